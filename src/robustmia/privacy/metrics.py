"""Membership-inference metrics from scores (higher = more likely a member) and the truth.

One function, :func:`evaluate_scores`, serves every attack. All curve metrics come from a
single sort of the scores; ties are handled as scikit-learn does (one operating point per
distinct score), so the numbers equal ``roc_auc_score``, ``average_precision_score`` and
``roc_curve`` exactly up to floating-point rounding.

Definitions:

- A threshold ``t`` predicts "member" for every score ``>= t``.
- ``inference_accuracy``: the *balanced* accuracy at the chosen threshold, (TPR + TNR) / 2,
  which is the paper's accuracy on its balanced evaluation sets and stays meaningful on
  unbalanced ones (where plain accuracy rewards calling everyone a non-member);
  ``precision`` (TP / (TP + FP), computed as the paper does, on the sets as given) and
  ``recall`` at the same threshold. With ``threshold=None`` it is the oracle threshold, the
  one that maximises balanced accuracy on these very scores (the paper's choice: an
  optimistic upper bound); otherwise the given one (e.g. learned on shadow models).
- ``auprc``: average precision with members as the positive class.
- ``roc_auc``; ``tpr_at_fpr[a]``: the highest TPR of an operating point whose FPR <= a;
  ``advantage``: max over thresholds of TPR - FPR.
- ``kl_divergence``: KL(members || non-members) in nats between histograms of the loss
  (or, without losses, of the scores): 100 equal-width bins over the pooled range of both
  samples, each bin count + 0.5 (Jeffreys smoothing), then normalised. It is 0 for
  identical samples and grows as the two distributions separate.
- ``ci95``: 2.5 and 97.5 percentiles over bootstrap resamples of the examples (the
  threshold is re-chosen in each resample when it is the oracle's).
- ``empirical_epsilon``: what the attack proves about any (epsilon, delta)-DP guarantee the
  model could have (Kairouz et al. 2015; Jagielski et al. 2020): at a threshold with rates FPR
  and FNR, epsilon >= max(log((1 - delta - FNR) / FPR), log((1 - delta - FPR) / FNR)).
  ``lower_bound`` puts in the Clopper-Pearson upper ends of FPR and FNR and takes the best of
  the m thresholds tried (every distinct score, or, beyond 10,000 of them, 10,000 evenly
  spaced along the ROC curve); the 5% risk is split over both rates and all m thresholds (each rate
  one-sided at 1 - 0.025/m, Bonferroni), so the bound holds with 95% confidence as stated.
  (Jagielski et al. and TensorFlow Privacy maximise 95% bounds over thresholds chosen on the same
  data, which is optimistic.) At the threshold that gives it, ``interval`` is [lower_bound,
  upper], upper from the Clopper-Pearson lower ends of the rates (None: no finite upper end),
  and ``estimate`` the bound from the observed rates. A model that leaks nothing has a lower
  bound of 0 (its interval is then given at the oracle threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

FPR_LEVELS: tuple[float, ...] = (0.001, 0.01)
DELTA = 1e-5  # the delta of the empirical epsilon unless told (a DP target's own delta)
EPSILON_CONFIDENCE = 0.95
EPSILON_THRESHOLDS = 10_000  # the most thresholds the epsilon bound tries (its exact intervals cost ~4 us each)
KL_BINS, KL_PSEUDOCOUNT = 100, 0.5


@dataclass
class OperatingPoints:
    """Cumulative counts at every distinct threshold, highest first, after a leading +inf."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_pos: int
    n_neg: int

    @property
    def tpr(self) -> np.ndarray:
        return self.tp / self.n_pos

    @property
    def fpr(self) -> np.ndarray:
        return self.fp / self.n_neg


def operating_points(scores: np.ndarray, member: np.ndarray) -> OperatingPoints:
    order = np.argsort(-scores, kind="stable")
    s, m = scores[order], member[order]
    last = np.flatnonzero(np.diff(s)) if len(s) > 1 else np.array([], dtype=np.int64)
    idx = np.r_[last, len(s) - 1]
    tp = np.cumsum(m, dtype=np.int64)[idx]
    fp = idx + 1 - tp
    return OperatingPoints(np.r_[np.inf, s[idx]], np.r_[0, tp], np.r_[0, fp], int(tp[-1]), int(fp[-1]))


def roc_auc(p: OperatingPoints) -> float:
    return float(np.trapezoid(p.tpr, p.fpr))


def average_precision(p: OperatingPoints) -> float:
    tp, fp = p.tp[1:], p.fp[1:]
    precision = tp / (tp + fp)
    recall = tp / p.n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def tpr_at_fpr(p: OperatingPoints, level: float) -> float:
    ok = np.flatnonzero(p.fpr <= level)
    return float(p.tpr[ok[-1]])


def balanced_accuracy(tp, fp, n_pos: int, n_neg: int):
    """(TPR + TNR) / 2."""
    return 0.5 * (tp / n_pos + (n_neg - fp) / n_neg)


def _counts(tp: int, fp: int, n_pos: int, n_neg: int) -> tuple[float, float, float]:
    """Balanced accuracy, precision and recall from the counts at one threshold."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    return float(balanced_accuracy(tp, fp, n_pos, n_neg)), precision, tp / n_pos


def best_threshold(p: OperatingPoints) -> tuple[float, int]:
    """The threshold that maximises balanced accuracy (the first, i.e. highest, on ties) and its index."""
    i = int(np.argmax(balanced_accuracy(p.tp, p.fp, p.n_pos, p.n_neg)))
    return float(p.thresholds[i]), i


def _upper_rate(errors: np.ndarray, n: int, level: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bounds of error rates ``errors / n`` at confidence ``level``."""
    from scipy.stats import beta

    errors = np.asarray(errors)
    safe = np.minimum(errors, n - 1)  # the upper end at errors == n is 1
    return np.where(errors >= n, 1.0, beta.ppf(level, safe + 1, n - safe))


def _lower_rate(errors: np.ndarray, n: int, level: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bounds of error rates ``errors / n`` at confidence ``level``."""
    return 1.0 - _upper_rate(n - np.asarray(errors), n, level)


def _epsilons(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> np.ndarray:
    """The epsilon bound at each operating point (0 where the rates prove nothing; inf at a zero rate)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.maximum(1 - delta - fnr, 0) / fpr)
        b = np.log(np.maximum(1 - delta - fpr, 0) / fnr)
    both = np.fmax(np.where(np.isnan(a), -np.inf, a), np.where(np.isnan(b), -np.inf, b))
    return np.maximum(both, 0.0)


def _thinned(p: OperatingPoints, most: int) -> OperatingPoints:
    """At most ``most`` of the operating points, evenly spaced along them (the first and last kept)."""
    if len(p.thresholds) <= most:
        return p
    keep = np.unique(np.linspace(0, len(p.thresholds) - 1, most).round().astype(np.int64))
    return OperatingPoints(p.thresholds[keep], p.tp[keep], p.fp[keep], p.n_pos, p.n_neg)


def empirical_epsilon(p: OperatingPoints, delta: float = DELTA, confidence: float = EPSILON_CONFIDENCE) -> dict[str, Any]:
    """The epsilon lower bound of the operating points and its interval (see the module docstring)."""
    p = _thinned(p, EPSILON_THRESHOLDS)
    m = len(p.thresholds)
    level = 1 - (1 - confidence) / (2 * m)
    fn = p.n_pos - p.tp
    lower = _epsilons(_upper_rate(p.fp, p.n_neg, level), _upper_rate(fn, p.n_pos, level), delta)
    i = int(np.argmax(lower)) if lower.max() > 0 else best_threshold(p)[1]  # no proof anywhere: the oracle threshold
    upper = _epsilons(_lower_rate(p.fp[i], p.n_neg, level), _lower_rate(fn[i], p.n_pos, level), delta)
    estimate = _epsilons(p.fp[i] / p.n_neg, fn[i] / p.n_pos, delta)
    finite = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731
    return {"lower_bound": float(lower[i]), "interval": [float(lower[i]), finite(upper)], "estimate": finite(estimate),
            "at_threshold": finite(p.thresholds[i]), "thresholds": m, "delta": delta, "confidence": confidence,
            "method": "Clopper-Pearson, Bonferroni over both rates and all thresholds"}


def kl_divergence(member_values: np.ndarray, nonmember_values: np.ndarray) -> float:
    lo = float(min(member_values.min(), nonmember_values.min()))
    hi = float(max(member_values.max(), nonmember_values.max()))
    if hi <= lo:
        return 0.0
    edges = np.linspace(lo, hi, KL_BINS + 1)
    p = np.histogram(member_values, edges)[0] + KL_PSEUDOCOUNT
    q = np.histogram(nonmember_values, edges)[0] + KL_PSEUDOCOUNT
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def _point_metrics(scores: np.ndarray, member: np.ndarray, threshold: Optional[float], levels: Sequence[float],
                   p: Optional[OperatingPoints] = None) -> dict[str, Any]:
    p = operating_points(scores, member) if p is None else p
    if threshold is None:
        threshold, i = best_threshold(p)
        accuracy, precision, recall = _counts(int(p.tp[i]), int(p.fp[i]), p.n_pos, p.n_neg)
    else:
        pred = scores >= threshold
        accuracy, precision, recall = _counts(int(np.sum(pred & member)), int(np.sum(pred & ~member)), p.n_pos, p.n_neg)
    return {
        "inference_accuracy": accuracy,
        "precision": precision,
        "recall": recall,
        "threshold": threshold,
        "auprc": average_precision(p),
        "roc_auc": roc_auc(p),
        "advantage": float(np.max(p.tpr - p.fpr)),
        "tpr_at_fpr": {str(a): tpr_at_fpr(p, a) for a in levels},
    }


@dataclass
class MembershipMetrics:
    attack: str
    threshold_selection: str
    n_members: int
    n_nonmembers: int
    inference_accuracy: float
    precision: float
    recall: float
    threshold: float
    auprc: float
    roc_auc: float
    advantage: float
    tpr_at_fpr: dict[str, float]
    kl_divergence: float
    kl_on: str
    ci95: dict[str, list[float]] = field(default_factory=dict)
    n_bootstrap: int = 0
    empirical_epsilon: dict[str, Any] = field(default_factory=dict)
    inference_accuracy_is: str = "balanced: (TPR + TNR) / 2 at the threshold"

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["threshold"] = None if not np.isfinite(self.threshold) else self.threshold
        return d

    def summary(self) -> str:
        return (f"{self.attack} ({self.threshold_selection} threshold): accuracy {self.inference_accuracy:.4f}, "
                f"AUC {self.roc_auc:.4f}, TPR@1%FPR {self.tpr_at_fpr.get('0.01', float('nan')):.4f}, "
                f"on {self.n_members} members + {self.n_nonmembers} non-members")


_CI_KEYS = ("inference_accuracy", "precision", "recall", "auprc", "roc_auc", "advantage", "kl_divergence")


def evaluate_scores(
    scores: np.ndarray,
    member: np.ndarray,
    *,
    attack: str = "scores",
    threshold: Optional[float] = None,
    losses: Optional[np.ndarray] = None,
    levels: Sequence[float] = FPR_LEVELS,
    n_bootstrap: int = 1000,
    seed: int = 0,
    selection: Optional[str] = None,
    delta: float = DELTA,
) -> MembershipMetrics:
    """All metrics of one attack. ``threshold=None`` picks the oracle threshold; ``selection``
    says how a given threshold was chosen (e.g. ``shadow``; default ``given``); ``delta`` is the
    delta of the empirical epsilon."""
    scores = np.asarray(scores, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if scores.shape != member.shape or scores.ndim != 1:
        raise ValueError("scores and member must be 1-D arrays of the same length")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    if member.all() or not member.any():
        raise ValueError("need at least one member and one non-member")
    kl_values = scores if losses is None else np.asarray(losses, dtype=np.float64)
    points = operating_points(scores, member)
    point = _point_metrics(scores, member, threshold, levels, points)
    kl = kl_divergence(kl_values[member], kl_values[~member])
    result = MembershipMetrics(
        attack=attack, threshold_selection="oracle" if threshold is None else (selection or "given"),
        n_members=int(member.sum()), n_nonmembers=int((~member).sum()), kl_divergence=kl,
        kl_on="loss" if losses is not None else "score",
        empirical_epsilon=empirical_epsilon(points, delta), **point,
    )
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        samples: dict[str, list[float]] = {k: [] for k in (*_CI_KEYS, *(f"tpr_at_fpr_{a}" for a in levels))}
        n = len(scores)
        for _ in range(n_bootstrap):
            idx = rng.integers(0, n, n)
            m = member[idx]
            if m.all() or not m.any():
                continue
            b = _point_metrics(scores[idx], m, threshold, levels)
            b["kl_divergence"] = kl_divergence(kl_values[idx][m], kl_values[idx][~m])
            for k in _CI_KEYS:
                samples[k].append(b[k])
            for a in levels:
                samples[f"tpr_at_fpr_{a}"].append(b["tpr_at_fpr"][str(a)])
        result.ci95 = {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in samples.items() if v}
        result.n_bootstrap = n_bootstrap
    return result
