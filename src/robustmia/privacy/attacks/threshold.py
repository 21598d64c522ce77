"""The paper's threshold attacks on a single signal (Song, Shokri & Mittal 2019; Yeom et al.;
Song & Mittal 2021), with a global threshold or one per class.

The signal is oriented so that higher means member: confidence as is, loss, entropy and
modified entropy negated. Threshold selection is ``oracle`` (the accuracy-maximising
threshold on the evaluation set itself: an optimistic upper bound, as in the paper) or
``shadow`` (the accuracy-maximising threshold on reference models trained with the
target's recipe, whose own members are known, then applied to the target).
With per-class thresholds the scores are shifted by their class's threshold, so that one
global threshold of 0 applies the per-class ones.
"""

from __future__ import annotations

import numpy as np

from robustmia.privacy.attacks.base import AttackInputs, AttackOptions, AttackScores
from robustmia.privacy.attacks.registry import register_attack
from robustmia.privacy.metrics import best_threshold, operating_points

# attack name -> (signal, sign that makes higher mean member)
THRESHOLD_SIGNALS: dict[str, tuple[str, float]] = {
    "confidence": ("confidence", 1.0),
    "loss": ("loss", -1.0),
    "entropy": ("entropy", -1.0),
    "modified-entropy": ("mentropy", -1.0),
}


def _best(scores: np.ndarray, member: np.ndarray) -> float:
    if member.all() or not member.any():
        return float("inf") if not member.any() else float(scores.min())
    t, _ = best_threshold(operating_points(scores, member))
    return t


def _finite(t: float, scores: np.ndarray) -> float:
    # "no example is a member" (+inf) as a finite shift just above every score
    return t if np.isfinite(t) else float(scores.max()) + 1.0


def threshold_attack(inputs: AttackInputs, signal: str, sign: float, *, selection: str = "oracle", per_class: bool = False) -> AttackScores:
    """Oracle thresholds, per class too, are the metrics' to pick on the truth (metrics.oracle_per_group): the attack
    returns its scores and, per class, the classes; shadow thresholds it picks on the reference models' known members."""
    scores = sign * inputs.target[signal].astype(np.float64)
    if selection == "shadow":
        ref = sign * inputs.reference_matrix(signal).astype(np.float64)
        ref_labels = np.broadcast_to(inputs.labels, ref.shape)
        if not per_class:
            return AttackScores(scores, _best(ref.ravel(), inputs.keep.ravel()), "shadow")
        shifted = scores.copy()
        for c in np.unique(inputs.labels):
            t = _finite(_best(ref[ref_labels == c], inputs.keep[ref_labels == c]), scores)
            shifted[inputs.labels == c] -= t
        return AttackScores(shifted, 0.0, "shadow")
    return AttackScores(scores, None, "oracle", oracle_groups=inputs.labels if per_class else None)


def register_threshold(name: str, signal: str, sign: float, help: str, **needs) -> None:
    """Register a threshold attack on one signal (``sign`` makes higher mean member); ``needs`` as
    :class:`~robustmia.privacy.attacks.registry.AttackSpec`."""
    def run(inputs: AttackInputs, options: AttackOptions) -> AttackScores:
        if signal not in inputs.target:
            raise ValueError(f"attack {name} needs the signal {signal!r}, which was not computed")
        return threshold_attack(inputs, signal, sign, selection=options.selection, per_class=options.per_class)

    register_attack(name, help=help, threshold=True, **needs)(run)


for _name, (_signal, _sign) in THRESHOLD_SIGNALS.items():
    register_threshold(_name, _signal, _sign, f"the paper's threshold attack on the {_signal} signal", default=True)
for _name, (_signal, _sign) in THRESHOLD_SIGNALS.items():
    register_threshold(f"adv-{_name}", f"adv_{_signal}", _sign, f"the threshold attack on the {_signal} of PGD points", adversarial=True)
register_threshold("loss-increase", "loss_increase", -1.0, "threshold on the loss increase under PGD (robust training makes members' rise less)",
          adversarial=True)
