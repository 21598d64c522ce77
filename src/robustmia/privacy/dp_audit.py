"""A valid lower bound on epsilon from one training run (Steinke, Nasr & Jagielski 2023, "Privacy
Auditing with One (1) Training Run").

Each of m candidate examples (canaries) is included in the training set by an independent fair coin.
After the one training run, an attack scores every candidate; the auditor guesses "member" for the
``k_pos`` highest scores and "non-member" for the ``k_neg`` lowest, and abstains on the rest. If the
training algorithm is (epsilon, delta)-DP, the number of correct guesses W among the r = k_pos + k_neg
guesses satisfies (their Theorem 3.2 and Algorithm 2), with q = e^eps / (1 + e^eps):

    P[W >= v] <= P[Binomial(r, q) >= v] + 2 m delta * max_{1 <= i <= v} P[v > Binomial(r, q) >= v - i] / i.

The right side is the p-value of v correct guesses under the hypothesis "(epsilon, delta)-DP"; the lower
bound at confidence c is the largest epsilon whose p-value is below 1 - c: the data reject every smaller
epsilon. This holds for one run because the coins, not the examples, are the random trials.

The guesses' counts must not be chosen by looking at how they score. ``one_run_bound`` takes either one
(k_pos, k_neg) fixed in advance, or a grid of them, testing each at (1 - c) / |grid| (Bonferroni) and
reporting the best: the bound holds at confidence c either way. From the same guesses it also gives the
largest mu of mu-GDP that they refute (privacy.gdp: Mahloujifar, Melis & Chaudhuri 2025), which has no 2 m
delta term and so is tighter, but refutes a Gaussian-DP claim only.

Several attacks on one run are several tests: the largest of their bounds, each at confidence c, holds at less
than c. ``family`` splits the confidence over them too, and :func:`headline` takes the largest of the bounds so
corrected: the one statement an audit makes.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

CONFIDENCE = 0.95
DELTA = 1e-5
GRID_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # r / m tried when no (k_pos, k_neg) is fixed: half each way


def p_value(m: int, r: int, v: int, eps: float, delta: float = 0.0) -> float:
    """The p-value of ``v`` correct guesses out of ``r`` (of ``m`` candidates) if the algorithm is (eps, delta)-DP."""
    from scipy.stats import binom

    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    q = 1.0 / (1.0 + math.exp(-eps))
    beta = float(binom.sf(v - 1, r, q))
    if delta == 0 or v == 0:
        return min(beta, 1.0)
    pmf = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[B = v - i] for i = 1..v
    alpha = float(np.max(np.cumsum(pmf) / np.arange(1, v + 1)))
    return min(beta + 2 * m * delta * alpha, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float = 0.0, confidence: float = CONFIDENCE) -> float:
    """The largest epsilon that ``v`` correct guesses out of ``r`` reject at ``confidence`` (0 when none is)."""
    from scipy.optimize import brentq

    level = 1.0 - confidence
    if r == 0 or p_value(m, r, v, 0.0, delta) >= level:
        return 0.0
    hi = 1.0
    while p_value(m, r, v, hi, delta) < level:
        hi *= 2
        if hi > 1e4:
            return math.inf  # every epsilon is rejected (v = r with many guesses and no delta)
    return float(brentq(lambda e: p_value(m, r, v, e, delta) - level, 0.0, hi, xtol=1e-12, rtol=1e-12))


def guesses(scores: np.ndarray, k_pos: int, k_neg: int) -> np.ndarray:
    """+1 for the ``k_pos`` highest scores, -1 for the ``k_neg`` lowest, 0 (abstain) for the rest; ties broken
    by position, which carries no information about the coins."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    out = np.zeros(len(order), dtype=np.int8)
    out[order[:k_pos]] = 1
    if k_neg:
        out[order[len(order) - k_neg:]] = -1
    return out


def default_grid(m: int) -> list[tuple[int, int]]:
    """(k_pos, k_neg) pairs tried when none is fixed: r = m x each of GRID_FRACTIONS, split evenly."""
    pairs = []
    for f in GRID_FRACTIONS:
        r = max(2, int(round(f * m)))
        pair = (r - r // 2, r // 2)
        if pair not in pairs and sum(pair) <= m:
            pairs.append(pair)
    return pairs


def one_run_bound(scores: np.ndarray, included: np.ndarray, *, delta: float = DELTA, confidence: float = CONFIDENCE,
                  k: Optional[tuple[int, int]] = None, grid: Optional[Sequence[tuple[int, int]]] = None,
                  family: int = 1) -> dict[str, Any]:
    """The one-run bounds of an attack's ``scores`` on the candidates whose coins are ``included``, at the fixed ``k`` =
    (k_pos, k_neg), or the best over ``grid`` (default :func:`default_grid`) with the confidence split across it: Steinke
    et al.'s epsilon lower bound of any (epsilon, delta)-DP guarantee, and Mahloujifar et al.'s largest mu of mu-GDP
    refuted (privacy.gdp) with the epsilon that mu-GDP has at ``delta``, from the same guesses. ``family``: how many
    attacks share the confidence (each test is then taken at (1 - confidence) / (family x grid size), so that the
    largest bound over the attacks holds at ``confidence``). The record says which, and every count it rests on."""
    from robustmia.privacy.gdp import epsilon_of_mu, mu_lower_bound

    scores = np.asarray(scores, dtype=np.float64)
    included = np.asarray(included, dtype=bool)
    m = len(scores)
    if included.shape != (m,) or m == 0:
        raise ValueError("scores and included must be 1-D arrays of the same, non-zero length")
    if family < 1:
        raise ValueError(f"family must be at least 1, got {family}")
    pairs = [k] if k is not None else list(grid or default_grid(m))
    if any(kp < 0 or kn < 0 or kp + kn > m or kp + kn == 0 for kp, kn in pairs):
        raise ValueError(f"each (k_pos, k_neg) must guess at least once and at most m = {m} times")
    per_test = 1 - (1 - confidence) / (len(pairs) * family)
    best: Optional[dict[str, Any]] = None
    gdp: Optional[dict[str, Any]] = None
    for kp, kn in pairs:
        g = guesses(scores, kp, kn)
        r = kp + kn
        v = int(np.sum((g == 1) & included) + np.sum((g == -1) & ~included))
        counts = {"k_pos": kp, "k_neg": kn, "guesses": r, "correct": v}
        eps = epsilon_lower_bound(m, r, v, delta, per_test)
        if best is None or eps > best["epsilon_lower_bound"]:
            best = {"epsilon_lower_bound": eps, **counts}
        mu = mu_lower_bound(m, r, v, per_test)
        if gdp is None or mu > gdp["mu_lower_bound"]:
            gdp = {"mu_lower_bound": mu, **counts}
    selection = "fixed in advance" if k is not None else f"best of {len(pairs)} (k_pos, k_neg), Bonferroni"
    if family > 1:
        selection += f", and over {family} attacks"
    gdp["epsilon_at_delta"] = epsilon_of_mu(gdp["mu_lower_bound"], delta)
    gdp["refutes"] = REFUTES_GDP
    return {**best, "m": m, "included": int(included.sum()), "delta": delta, "confidence": confidence, "family": family,
            "selection": selection, "method": "Steinke, Nasr & Jagielski 2023 (one training run)", "refutes": REFUTES_DP,
            "valid_as_dp_bound": True, "gdp": {**gdp, "method": "Mahloujifar, Melis & Chaudhuri 2025 (f-DP in one run)"}}


REFUTES_DP = "any (epsilon, delta)-DP guarantee"
REFUTES_GDP = ("mu-GDP for every mu up to the bound (a Gaussian-DP claim, as DP-SGD's analyses make; the epsilon is that of "
               "mu-GDP at delta, no bound on an arbitrary (epsilon, delta)-DP mechanism)")


def headline(records: Sequence[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The audit's one statement over all its attacks (records of experiments.dp_audit, each with ``family_bound``): the
    largest family-wise epsilon lower bound and the largest family-wise mu refuted, each with the attack that gave it,
    valid at the records' confidence together; None for records made before family-wise bounds existed."""
    family = [r for r in records if r.get("family_bound")]
    if not family or len(family) != len(records):
        return None
    dp = max(family, key=lambda r: r["family_bound"]["epsilon_lower_bound"])
    gdp = max(family, key=lambda r: r["family_bound"]["mu_lower_bound"])
    return {"epsilon_lower_bound": dp["family_bound"]["epsilon_lower_bound"], "epsilon_attack": dp["attack"],
            "mu_lower_bound": gdp["family_bound"]["mu_lower_bound"], "epsilon_at_delta": gdp["family_bound"]["epsilon_at_delta"],
            "mu_attack": gdp["attack"], "attacks": family[0]["family_bound"]["attacks"], "confidence": family[0]["confidence"],
            "delta": family[0]["delta"]}
