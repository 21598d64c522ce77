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
- ``epsilon_estimate_one_run``: a descriptive figure, NOT a bound on any DP guarantee
  (``valid_as_dp_bound: false``). From one trained model: at a threshold with rates FPR and FNR,
  epsilon >= max(log((1 - delta - FNR) / FPR), log((1 - delta - FPR) / FNR)) would hold for an
  (epsilon, delta)-DP mechanism (Kairouz et al. 2015; Jagielski et al. 2020) if each audited example
  were an independent trial of the training algorithm. Within one run they are not, and the
  non-members were never candidates for inclusion, so no statement about DP follows; a valid
  one-run bound needs randomised inclusion (``robustmia dp-audit``, privacy.dp_audit). ``value``
  puts in the Clopper-Pearson upper ends of FPR and FNR (each rate one-sided at 1 - 0.025/m,
  Bonferroni over both rates and the m thresholds tried: every distinct score, or 10,000 evenly
  spaced along the ROC curve) and takes the best; ``interval`` is [value, upper] at that threshold
  (upper from the lower ends of the rates; None: no finite upper end) and ``point`` the figure from
  the observed rates. Records made before this name was chosen call it ``empirical_epsilon`` (with
  ``lower_bound`` for ``value``); :func:`epsilon_estimate` reads both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

FPR_LEVELS: tuple[float, ...] = (0.001, 0.01)
DELTA = 1e-5  # the delta of the one-run epsilon figure unless told (a DP target's own delta)
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


def group_thresholds(scores: np.ndarray, member: np.ndarray, groups: np.ndarray) -> dict[Any, float]:
    """Each group's accuracy-maximising threshold on the truth, finite (a group with no member, or whose best is to call
    no one a member: just above its scores; one of members only: its lowest score)."""
    out = {}
    for g in np.unique(groups):
        mask = groups == g
        s, m = np.asarray(scores[mask], dtype=np.float64), member[mask]
        if not m.any():
            out[g] = float(s.max()) + 1.0
        elif m.all():
            out[g] = float(s.min())
        else:
            t = best_threshold(operating_points(s, m))[0]
            out[g] = t if np.isfinite(t) else float(s.max()) + 1.0  # "no one is a member": just above every score
    return out


def oracle_per_group(scores: np.ndarray, member: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """One oracle threshold per group (e.g. per class), chosen on the truth as the oracle is: the scores shifted by their
    group's accuracy-maximising threshold (:func:`group_thresholds`), so that one global threshold of 0 applies them. The
    attacks never see ``member``: choosing a threshold on the truth is the metrics' job."""
    shifted = np.asarray(scores, dtype=np.float64).copy()
    for g, t in group_thresholds(shifted, member, groups).items():
        shifted[groups == g] -= t
    return shifted


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


def epsilon_estimate_one_run(p: OperatingPoints, delta: float = DELTA, confidence: float = EPSILON_CONFIDENCE) -> dict[str, Any]:
    """The descriptive one-run epsilon figure of the operating points and its interval (see the module docstring)."""
    p = _thinned(p, EPSILON_THRESHOLDS)
    m = len(p.thresholds)
    level = 1 - (1 - confidence) / (2 * m)
    fn = p.n_pos - p.tp
    lower = _epsilons(_upper_rate(p.fp, p.n_neg, level), _upper_rate(fn, p.n_pos, level), delta)
    i = int(np.argmax(lower)) if lower.max() > 0 else best_threshold(p)[1]  # no proof anywhere: the oracle threshold
    upper = _epsilons(_lower_rate(p.fp[i], p.n_neg, level), _lower_rate(fn[i], p.n_pos, level), delta)
    estimate = _epsilons(p.fp[i] / p.n_neg, fn[i] / p.n_pos, delta)
    finite = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731
    return {"value": float(lower[i]), "interval": [float(lower[i]), finite(upper)], "point": finite(estimate),
            "at_threshold": finite(p.thresholds[i]), "thresholds": m, "delta": delta, "confidence": confidence,
            "method": "Clopper-Pearson, Bonferroni over both rates and all thresholds", "valid_as_dp_bound": False,
            "what": "descriptive: one trained model's examples are not independent trials, so this bounds no DP guarantee"}


def epsilon_estimate(record: dict[str, Any]) -> Optional[dict[str, Any]]:
    """A record's descriptive one-run epsilon figure, under its name or the one earlier records used."""
    e = record.get("epsilon_estimate_one_run")
    if e:
        return e
    old = record.get("empirical_epsilon")
    if not old:
        return None
    return {**old, "value": old.get("lower_bound", 0.0), "point": old.get("estimate"), "valid_as_dp_bound": False}


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


def _max_balanced_accuracy(order: np.ndarray, last: np.ndarray, labels: np.ndarray, n_pos: int, n_neg: int) -> np.ndarray:
    """The oracle (best over thresholds) balanced accuracy of each row of ``labels`` ((P, N) bool), for scores whose
    descending ``order`` and distinct-score group ends ``last`` are fixed."""
    tp = np.cumsum(labels[:, order], axis=1, dtype=np.int64)[:, last]
    fp = (last + 1)[None, :] - tp
    return np.maximum(0.5, balanced_accuracy(tp, fp, n_pos, n_neg).max(axis=1))


def chance(scores: np.ndarray, member: np.ndarray, observed: float, threshold: Optional[float], n_permutations: int,
           seed: int) -> dict[str, Any]:
    """The null of the balanced accuracy at these sizes: the same scores with membership permuted at random. For the
    oracle (``threshold`` None) the statistic is the best over thresholds in each permutation, as it is for the data,
    so the null is that of the maximum; else the accuracy at the given threshold. ``p_value`` = (1 + permutations at
    or above ``observed``) / (1 + permutations); ``null95`` its 95th percentile."""
    rng = np.random.default_rng([seed, 0xC4A])
    labels = np.stack([rng.permutation(member) for _ in range(n_permutations)])
    n_pos, n_neg = int(member.sum()), int((~member).sum())
    if threshold is None:
        order = np.argsort(-scores, kind="stable")
        s = scores[order]
        last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) > 1 else np.array([0])
        null = _max_balanced_accuracy(order, last, labels, n_pos, n_neg)
    else:
        pred = scores >= threshold
        null = balanced_accuracy((labels & pred).sum(1), (~labels & pred).sum(1), n_pos, n_neg)
    return {"permutations": n_permutations, "null95": float(np.percentile(null, 95)),
            "p_value": float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations)),
            "statistic": "the best balanced accuracy over thresholds" if threshold is None else "balanced accuracy at the threshold"}


def _halves(member: np.ndarray, seed: int) -> np.ndarray:
    """A random half of the examples, members and non-members halved alike (the same for a given ``seed``)."""
    rng = np.random.default_rng([seed, 0x5B1])
    half = np.zeros(len(member), bool)
    for group in (np.flatnonzero(member), np.flatnonzero(~member)):
        half[rng.permutation(group)[: len(group) // 2]] = True
    return half


def _rates(pred: np.ndarray, member: np.ndarray) -> tuple[float, float]:
    """(balanced accuracy, and its sampling variance given the threshold) of predictions on examples the threshold
    was not chosen on: TPR and TNR are binomial proportions; their variances use Agresti-Coull's (x + 1) / (n + 2), so
    that a rate of 0 or 1 does not claim no variance."""
    n_pos, n_neg = int(member.sum()), int((~member).sum())
    tp, tn = int(np.sum(pred & member)), int(np.sum(~pred & ~member))
    accuracy = (tp / n_pos + tn / n_neg) / 2
    p, q = (tp + 1) / (n_pos + 2), (tn + 1) / (n_neg + 2)
    return accuracy, (p * (1 - p) / n_pos + q * (1 - q) / n_neg) / 4


def _cross_fit(scores: np.ndarray, member: np.ndarray, seed: int, groups: Optional[np.ndarray] = None) -> list[tuple[float, float]]:
    """Per fold (threshold chosen on one half, scored on the other, then the other way round): (accuracy, variance). With
    ``groups``, one threshold per group is chosen on the fit half (a group it lacks gets the half's global threshold)."""
    half = _halves(member, seed)
    folds = []
    for fit, score in ((half, ~half), (~half, half)):
        if member[fit].all() or not member[fit].any() or member[score].all() or not member[score].any():
            continue
        t, _ = best_threshold(operating_points(scores[fit], member[fit]))
        if groups is None:
            cut = t
        else:
            chosen = group_thresholds(scores[fit], member[fit], groups[fit])
            cut = np.array([chosen.get(g, t) for g in groups[score]])
        accuracy, variance = _rates(scores[score] >= cut, member[score])
        folds.append((accuracy, variance))
    return folds


def split_accuracy(scores: np.ndarray, member: np.ndarray, seed: int) -> float:
    """An honest point estimate beside the oracle's: the threshold chosen on one random half (members and non-members
    halved alike), balanced accuracy scored on the other, and the same the other way round, averaged."""
    folds = _cross_fit(scores, member, seed)
    return float(np.mean([a for a, _ in folds])) if folds else float("nan")


Z95 = 1.959963984540054


def calibrated(scores: np.ndarray, member: np.ndarray, threshold: Optional[float], seed: int,
               groups: Optional[np.ndarray] = None) -> dict[str, Any]:
    """The honest headline of an attack, with its 95% interval: an accuracy at thresholds chosen on other data than they
    are scored on. Without a given threshold (the oracle's records): :func:`split_accuracy`. Each fold is scored on
    examples its threshold never saw, so given the threshold its accuracy is a mean of two binomial proportions (TPR,
    TNR), with a normal interval; under no leak every threshold's accuracy is 50%. The two folds' errors may correlate
    (each fold's threshold comes from the other's scored half; measured 0.09-0.19 in simulation), so the interval takes
    the worst case, the mean of the folds' standard errors (Cauchy-Schwarz): as wide as one split's, around a steadier
    estimate. With a threshold chosen elsewhere (shadow models): the accuracy at it on every example, and its binomial
    interval. It estimates the accuracy that the chosen thresholds have on the examples' distribution, what an attacker
    who did not see the answers reaches; coverage tested in tests/privacy/test_calibrated.py."""
    if threshold is None:
        folds = _cross_fit(scores, member, seed, groups)
        if not folds:
            return {}
        accuracy = float(np.mean([a for a, _ in folds]))
        se = float(np.mean([np.sqrt(v) for _, v in folds]))  # the folds' errors may correlate: their worst case
        how = (f"{'one threshold per class' if groups is not None else 'threshold'} chosen on one half of the examples, "
               "accuracy scored on the other, both ways, averaged")
    else:
        accuracy, variance = _rates(scores >= threshold, member)
        se = float(np.sqrt(variance))
        how = "the given threshold (chosen on other data), accuracy scored on every example"
    return {"inference_accuracy": accuracy, "ci95": [max(0.0, accuracy - Z95 * se), min(1.0, accuracy + Z95 * se)], "how": how}


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
    epsilon_estimate_one_run: dict[str, Any] = field(default_factory=dict)
    inference_accuracy_is: str = "balanced: (TPR + TNR) / 2 at the threshold"
    chance: dict[str, Any] = field(default_factory=dict)  # the permutation null of inference_accuracy (see chance())
    split_accuracy: Optional[float] = None  # oracle selection: threshold from one half, scored on the other
    calibrated: dict[str, Any] = field(default_factory=dict)  # the honest headline and its 95% interval (see calibrated())

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["threshold"] = None if not np.isfinite(self.threshold) else self.threshold
        return d

    def summary(self) -> str:
        """One line, the calibrated accuracy first (as every summary: privacy.summary)."""
        lead = ""
        if self.calibrated:
            lo, hi = self.calibrated["ci95"]
            lead = f"accuracy (calibrated) {self.calibrated['inference_accuracy']:.4f} [{lo:.3f}, {hi:.3f}], "
        return (f"{self.attack} ({self.threshold_selection} threshold): {lead}accuracy (oracle, optimistic) "
                f"{self.inference_accuracy:.4f}, AUC {self.roc_auc:.4f}, TPR@1%FPR {self.tpr_at_fpr.get('0.01', float('nan')):.4f}, "
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
    n_permutations: int = 0,
    calibration: Optional[tuple[np.ndarray, np.ndarray]] = None,
) -> MembershipMetrics:
    """All metrics of one attack. ``threshold=None`` picks the oracle threshold; ``selection``
    says how a given threshold was chosen (e.g. ``shadow``; default ``given``); ``delta`` is the
    delta of the descriptive one-run epsilon figure; ``n_permutations`` > 0 gives the permutation
    null of the inference accuracy (``chance``), against which alone "beyond chance" may be said. ``calibration``: for
    scores shifted by per-group oracle thresholds (:func:`oracle_per_group`), the raw scores and their groups, so that the
    calibrated estimate picks the groups' thresholds on one half only."""
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
        epsilon_estimate_one_run=epsilon_estimate_one_run(points, delta), **point,
    )
    if n_permutations > 0:
        result.chance = chance(scores, member, result.inference_accuracy, threshold, n_permutations, seed)
    if threshold is None:
        result.split_accuracy = split_accuracy(scores, member, seed)
    result.calibrated = (calibrated(calibration[0], member, None, seed, calibration[1]) if calibration is not None else
                         calibrated(scores, member, threshold, seed))
    if n_bootstrap > 0:
        result.ci95 = _bootstrap_ci95(scores, member, kl_values, threshold, levels, n_bootstrap, seed)
        result.n_bootstrap = n_bootstrap
    return result


def _bootstrap_ci95(scores: np.ndarray, member: np.ndarray, kl_values: np.ndarray, threshold: Optional[float],
                    levels: Sequence[float], n_bootstrap: int, seed: int) -> dict[str, list[float]]:
    """Percentile 95% intervals of the point metrics over ``n_bootstrap`` resamples of the examples
    (a resample without both classes is skipped)."""
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
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in samples.items() if v}
