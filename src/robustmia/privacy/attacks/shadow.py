"""The shadow-model attack of Shokri et al. (2017).

Shadow models are trained with the target's recipe on data whose membership is known
(here the reference models and their keep masks). An attack classifier per class learns
to tell the shadow models' output vectors on their members from those on their
non-members; its member probability on the target's outputs is the score. The classifier
is scikit-learn's histogram gradient boosting on the sorted probability vector and the
true-class probability.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from robustmia.privacy.attacks.base import AttackInputs, AttackScores
from robustmia.privacy.attacks.registry import register_attack


def _features(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    p = np.exp(logp)
    true = p[np.arange(len(labels)), labels]
    return np.column_stack([np.sort(p, axis=1)[:, ::-1], true, logp[np.arange(len(labels)), labels]])


@register_attack("shadow", help="Shokri et al. 2017: a per-class attack classifier on the shadow models' outputs", references=True, default=True)
def shadow_attack(inputs: AttackInputs, options=None) -> AttackScores:
    return shokri(inputs)


def shokri(inputs: AttackInputs, *, seed: int = 0, min_per_class: int = 50,
           features: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray] = lambda s, y: _features(s["logits"], y)) -> AttackScores:
    """``features(signals, labels)``: what the attack classifier reads of a model's signals (by default
    its output vector); the white-box attack passes per-layer gradient norms."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if not inputs.references:
        raise ValueError("the shadow-model attack needs shadow (reference) models")
    x_shadow = np.concatenate([features(r, inputs.labels) for r in inputs.references])
    y_shadow = inputs.keep.reshape(-1)
    c_shadow = np.tile(inputs.labels, len(inputs.references))
    x_target = features(inputs.target, inputs.labels)
    scores = np.zeros(len(inputs.labels))

    def fit(mask: np.ndarray):
        return HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(x_shadow[mask], y_shadow[mask])

    overall = fit(np.ones(len(y_shadow), bool))
    for c in np.unique(inputs.labels):
        m = c_shadow == c
        ok = m.sum() >= min_per_class and 0 < y_shadow[m].sum() < m.sum()
        model = fit(m) if ok else overall
        scores[inputs.labels == c] = model.predict_proba(x_target[inputs.labels == c])[:, 1]
    return AttackScores(scores)
