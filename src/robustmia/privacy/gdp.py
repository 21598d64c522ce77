"""Gaussian differential privacy (mu-GDP; Dong, Roth & Su 2019) refuted by an audit.

A mechanism is mu-GDP when telling any two neighbouring datasets apart from its output is at least as hard
as telling N(0, 1) from N(mu, 1): every test's false negative rate is at least G_mu(false positive rate) =
Phi(Phi^-1(1 - FPR) - mu). DP-SGD's analyses describe it by such a curve. A mu-GDP mechanism is
(epsilon, delta(epsilon))-DP for every epsilon, with delta(epsilon) = Phi(-epsilon/mu + mu/2) -
e^epsilon Phi(-epsilon/mu - mu/2) (their Corollary 2.13): :func:`epsilon_of_mu`.

Two audits refute mu-GDP for every mu up to a lower bound, at a stated confidence:

- **one run** (Mahloujifar, Melis & Chaudhuri 2025, "Auditing f-Differential Privacy in One Run"): m canaries
  join one training run by independent fair coins; an attack guesses "member" for its k+ highest scores and
  "non-member" for its k- lowest (r = k+ + k- guesses); v of them are right. Under an f-DP mechanism the
  chance of v or more right guesses is at most ``level`` unless a recursion over i = v-1 .. 0, started at
  r_v = level r/m v/r and h_v = level r/m (r - v)/r, with h_i = max(h_{i+1}, f-bar^-1(r_{i+1})) and
  r_i = r_{i+1} + i/(r - i) (h_i - h_{i+1}), ends with r_0 + h_0 <= r/m (:func:`refutes`; f-bar^-1, the
  inverse of x -> 1 - f(x), is x -> Phi(Phi^-1(x) - mu) for G_mu). The largest mu it refutes is found by
  bisection (:func:`mu_lower_bound`); it is 0 when even mu -> 0 is not refuted. It holds for one run because
  the coins are the random trials, and it has no 2 m delta term, so it is tighter than Steinke et al.'s
  (epsilon, delta) bound on the same counts; but it refutes a Gaussian-DP claim, not an arbitrary
  (epsilon, delta)-DP one.
- **many runs** (Nasr et al. 2023, "Tight auditing of differentially private machine learning"): independent
  trainings that each include an audited example by a fair coin give trials; at each threshold of the attack's
  score, Clopper-Pearson upper bounds of the false positive rate (among the runs without it) and of the false
  negative rate (among those with it) give mu >= Phi^-1(1 - FPR_upper) - Phi^-1(FNR_upper). Over T thresholds
  each bound is taken at (1 - confidence) / (2 T) (Bonferroni), so the largest mu over thresholds holds at the
  confidence stated (:func:`multirun_mu_lower_bound`). Valid only where the inclusions were independent fair
  coins and the runs independent trainings.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

MU_CAP = 64.0  # a mu refuted beyond this is reported as infinite (every Gaussian-DP claim is refuted)
BISECTIONS = 40


def _inverse_blow_up(x: float, mu: float) -> float:
    """f-bar^-1(x) of G_mu: the largest false positive rate a test can have where 1 - its false negative rate is x."""
    from scipy.special import ndtr, ndtri

    return 0.0 if x <= 0 else float(ndtr(ndtri(min(x, 1.0)) - mu))


def refutes(mu: float, m: int, r: int, v: int, level: float) -> bool:
    """Whether ``v`` right guesses out of ``r`` (of ``m`` canaries) refute mu-GDP at significance ``level``."""
    if not 0 <= v <= r <= m or r == 0:
        raise ValueError(f"need 0 <= v <= r <= m and r > 0, got v={v}, r={r}, m={m}")
    scale = level * r / m
    mass, h = scale * v / r, scale * (r - v) / r
    for i in range(v - 1, -1, -1):
        h_next = max(h, _inverse_blow_up(mass, mu))
        mass += i / (r - i) * (h_next - h)
        h = h_next
    return mass + h > r / m


def mu_lower_bound(m: int, r: int, v: int, confidence: float) -> float:
    """The largest mu whose mu-GDP ``v`` right guesses out of ``r`` refute at ``confidence`` (0 when none is)."""
    level = 1.0 - confidence
    lo = 1e-9
    if r == 0 or not refutes(lo, m, r, v, level):
        return 0.0
    hi = 1.0
    while refutes(hi, m, r, v, level):
        lo, hi = hi, 2 * hi
        if hi > MU_CAP:
            return math.inf
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if refutes(mid, m, r, v, level) else (lo, mid)
    return lo


def delta_of(mu: float, epsilon: float) -> float:
    """The delta at ``epsilon`` of a mu-GDP mechanism (Dong, Roth & Su 2019, Corollary 2.13)."""
    from scipy.stats import norm

    if mu <= 0:
        return 0.0
    # e^epsilon Phi(b) in logs: epsilon may be in the hundreds (a DP-SGD run with little noise)
    return float(norm.cdf(-epsilon / mu + mu / 2) - math.exp(min(700.0, epsilon + norm.logcdf(-epsilon / mu - mu / 2))))


def epsilon_of_mu(mu: float, delta: float) -> float:
    """The smallest epsilon with (epsilon, delta)-DP for a mu-GDP mechanism: where :func:`delta_of` meets ``delta``."""
    from scipy.optimize import brentq

    if mu <= 0 or delta_of(mu, 0.0) <= delta:
        return 0.0
    if math.isinf(mu):
        return math.inf
    hi = max(1.0, mu * mu)
    while delta_of(mu, hi) > delta:
        hi *= 2
    return float(brentq(lambda e: delta_of(mu, e) - delta, 0.0, hi, xtol=1e-12, rtol=1e-12))


def mu_of_epsilon(epsilon: float, delta: float) -> float:
    """The mu whose Gaussian curve passes through (``epsilon``, ``delta``): the mu-GDP a claim of (epsilon, delta)-DP
    would be, were the mechanism Gaussian (to set an accountant's epsilon beside a refuted mu)."""
    from scipy.optimize import brentq

    if epsilon <= 0 or delta >= 1:
        return 0.0
    hi = 1.0
    while epsilon_of_mu(hi, delta) < epsilon:
        hi *= 2
    return float(brentq(lambda mu: epsilon_of_mu(mu, delta) - epsilon, 1e-9, hi, xtol=1e-12))


def clopper_pearson_upper(k: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper confidence bounds of a rate with ``k`` successes out of ``n`` (level ``alpha``)."""
    from scipy.stats import beta

    k = np.asarray(k)
    return np.where(k >= n, 1.0, beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1)))


def multirun_mu_lower_bound(in_scores: Sequence[float], out_scores: Sequence[float], confidence: float = 0.95) -> dict:
    """Nasr et al.'s (2023) mu lower bound from independent runs: ``in_scores`` of the runs that included the audited
    example, ``out_scores`` of those that did not (higher: more likely included). Every threshold between distinct
    scores is tried, with Bonferroni over them (see the module docstring). Returns the bound and what it rests on."""
    from scipy.special import ndtri

    scores_in, scores_out = np.asarray(in_scores, dtype=np.float64), np.asarray(out_scores, dtype=np.float64)
    if scores_in.ndim != 1 or scores_out.ndim != 1 or not len(scores_in) or not len(scores_out):
        raise ValueError("need at least one run with the example and one without it")
    thresholds = np.unique(np.r_[scores_in, scores_out, np.inf])
    alpha = (1 - confidence) / (2 * len(thresholds))
    false_positive = (scores_out[None, :] >= thresholds[:, None]).sum(1)
    false_negative = (scores_in[None, :] < thresholds[:, None]).sum(1)
    fpr = clopper_pearson_upper(false_positive, len(scores_out), alpha)
    fnr = clopper_pearson_upper(false_negative, len(scores_in), alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        mus = ndtri(1 - fpr) - ndtri(fnr)
    mus = np.where(np.isfinite(mus), mus, -np.inf)
    best = int(np.argmax(mus))
    return {"mu_lower_bound": max(0.0, float(mus[best])), "threshold": float(thresholds[best]), "fpr_upper": float(fpr[best]),
            "fnr_upper": float(fnr[best]), "runs_with": len(scores_in), "runs_without": len(scores_out),
            "thresholds": len(thresholds), "confidence": confidence,
            "method": "Nasr et al. 2023 (independent runs; Clopper-Pearson, Bonferroni over thresholds)"}
