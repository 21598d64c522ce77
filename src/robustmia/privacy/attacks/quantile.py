"""The reference-free attack of Bertran et al. (2023), "Scalable membership inference attacks via
quantile regression", for targets whose recipe cannot be repeated.

On population examples (in no model's training set) a quantile regression learns, from the
example itself (its pixels, average-pooled to at most 8x8 per channel, and its label), the
(1 - fpr) quantile of the target's score on non-members; the score is LiRA's logit-scaled
confidence. An example is called a member when its score exceeds its predicted quantile, so
that each example gets its own threshold and the false-positive rate is ``fpr`` by
construction: the attack's decision is that threshold (selection ``quantile``), and its ROC
comes from score - quantile. The regressor is scikit-learn's histogram gradient boosting with
the pinball loss (Bertran et al. fine-tune a network; this is the CPU-sized variant).
"""

from __future__ import annotations

import numpy as np

from robustmia.privacy.attacks.base import AttackInputs, AttackScores
from robustmia.privacy.attacks.registry import register_attack

QMIA_FPR = 0.01
MIN_POPULATION = 200  # below this many population examples the 99% quantile rests on too few


def _features(signals: dict[str, np.ndarray], classes: int) -> np.ndarray:
    labels = signals["label"].astype(np.int64)
    return np.column_stack([signals["pixels"], np.eye(classes)[labels]])


def quantile_model(features: np.ndarray, scores: np.ndarray, fpr: float = QMIA_FPR, seed: int = 0):
    """The fitted (1 - fpr)-quantile regressor of ``scores`` given ``features``."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(loss="quantile", quantile=1 - fpr, max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                         min_samples_leaf=20, random_state=seed).fit(features, scores)


def qmia(inputs: AttackInputs, *, fpr: float = QMIA_FPR, seed: int = 0) -> AttackScores:
    pop = inputs.population
    if pop is None or "pixels" not in pop or "pixels" not in inputs.target:
        raise ValueError("the quantile attack needs population examples and their pixels")
    classes = int(max(inputs.labels.max(), pop["label"].max())) + 1
    model = quantile_model(_features(pop, classes), pop["lira"], fpr, seed)
    q = model.predict(_features(inputs.target, classes))
    return AttackScores(inputs.target["lira"].astype(np.float64) - q, 0.0, "quantile")


register_attack("qmia", help=f"reference-free: quantile regression on population data (Bertran et al. 2023), FPR {QMIA_FPR:g}",
                population=MIN_POPULATION, probes=("pixels",), family="reference-free")(lambda inputs, options: qmia(inputs))
