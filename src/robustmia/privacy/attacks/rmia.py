"""RMIA, the robust membership inference attack of Zarifzadeh et al. (2024).

With Pr(x | theta) the target's true-class probability and Pr(x) its average over the
reference models, the likelihood ratio against a population example z is
LR(x, z) = [Pr(x | theta) / Pr(x)] / [Pr(z | theta) / Pr(z)], and the score of x is the
fraction of population examples z with LR(x, z) >= gamma.

- online: Pr(x) averages all reference models (IN and OUT for x);
- offline: only OUT models are available, and Pr(x) = ((1 + a) * mean_OUT + (1 - a)) / 2,
  the paper's linear approximation of the IN-inclusive average (``a`` defaults to 0.3).
Population examples are in no model's training set, so Pr(z) uses the same formula.
"""

from __future__ import annotations

import numpy as np

from robustmia.privacy.attacks.base import AttackInputs, AttackScores
from robustmia.privacy.attacks.registry import register_attack

MIN_POPULATION = 100  # population examples below which RMIA's pairwise test is too coarse


def _prior(ref: np.ndarray, keep: np.ndarray | None, online: bool, a: float) -> np.ndarray:
    if online:
        return ref.mean(0)
    out = ~keep if keep is not None else np.ones_like(ref, dtype=bool)
    mean_out = np.where(out, ref, 0).sum(0) / np.maximum(out.sum(0), 1)
    return 0.5 * ((1 + a) * mean_out + (1 - a))


def rmia(inputs: AttackInputs, *, online: bool = True, a: float = 0.3, gamma: float = 1.0) -> AttackScores:
    if inputs.population is None or not inputs.ref_population:
        raise ValueError("RMIA needs population examples outside every model's training set")
    ref_x = inputs.reference_matrix("confidence").astype(np.float64)
    ref_z = np.stack([r["confidence"] for r in inputs.ref_population]).astype(np.float64)
    ratio_x = inputs.target["confidence"] / np.maximum(_prior(ref_x, inputs.keep, online, a), 1e-300)
    ratio_z = inputs.population["confidence"] / np.maximum(_prior(ref_z, None, online, a), 1e-300)
    sorted_z = np.sort(ratio_z)
    # LR(x, z) >= gamma  <=>  ratio_z <= ratio_x / gamma
    count = np.searchsorted(sorted_z, ratio_x / gamma, side="right")
    return AttackScores(count / len(sorted_z))


register_attack("rmia", help="RMIA (Zarifzadeh et al. 2024), online, against population examples", references=True,
                population=MIN_POPULATION, default=True)(lambda inputs, options: rmia(inputs, online=True))
register_attack("rmia-offline", help="RMIA offline (a = 0.3)", references=True,
                population=MIN_POPULATION)(lambda inputs, options: rmia(inputs, online=False))
