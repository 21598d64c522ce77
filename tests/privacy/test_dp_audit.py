"""The one-run DP audit bound (Steinke, Nasr & Jagielski 2023), on a mechanism whose epsilon is known
exactly, and against an independent computation of the same bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from robustmia.privacy.dp_audit import default_grid, epsilon_lower_bound, guesses, one_run_bound, p_value


def _randomized_response(m: int, eps: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Coins, and a mechanism that reports each coin truthfully with probability e^eps / (1 + e^eps): eps-DP in each coin."""
    coins = rng.random(m) < 0.5
    truthful = rng.random(m) < 1 / (1 + math.exp(-eps))
    reported = np.where(truthful, coins, ~coins)
    return coins, reported.astype(np.float64) + 0.1 * rng.random(m)  # scores: the report, ties broken at random


def test_the_bound_holds_at_its_confidence_on_randomized_response():
    """200 repetitions at eps = 1 over m = 1,000 coins, the (k_pos, k_neg) grid searched: the 95% bound may exceed the
    true eps in at most 5% of them; we allow the binomial slack of 200 draws (at most 21 of 200, the 99.9% quantile of
    Binomial(200, 0.05)). The grid's Bonferroni split makes it conservative: 3 of 200 exceed it here."""
    eps, reps = 1.0, 200
    exceeded = 0
    for seed in range(reps):
        coins, scores = _randomized_response(1000, eps, np.random.default_rng(seed))
        exceeded += one_run_bound(scores, coins, delta=0.0)["epsilon_lower_bound"] > eps
    assert exceeded <= binom.ppf(0.999, reps, 0.05) == 21, exceeded


def test_the_bound_approaches_epsilon_as_the_candidates_grow():
    """At eps = 2, guessing every candidate (k fixed in advance at m/2 each way), 5 repetitions each: the mean gap
    eps - bound falls from about 0.24 at 1,000 candidates to 0.07 at 10,000 and 0.02 at 100,000 (checked: it falls
    at each step, stays positive, and is below 0.04 at 100,000), as in the paper's own figure."""
    gaps = []
    for m in (1000, 10_000, 100_000):
        bounds = []
        for seed in range(5):
            coins, scores = _randomized_response(m, 2.0, np.random.default_rng([m, seed]))
            bounds.append(one_run_bound(scores, coins, delta=0.0, k=(m // 2, m // 2))["epsilon_lower_bound"])
        gaps.append(2.0 - float(np.mean(bounds)))
    assert gaps[0] > gaps[1] > gaps[2] > 0 and gaps[2] < 0.04 and gaps[0] > 0.1, gaps


def _paper_p_value(m, r, v, eps, delta):
    """Algorithm 2 of the paper as printed there: a loop over the binomial's probabilities."""
    q = 1 / (1 + math.exp(-eps))
    beta = binom.sf(v - 1, r, q)
    alpha, total = 0.0, 0.0
    for i in range(1, v + 1):
        total += binom.pmf(v - i, r, q)
        if total > i * alpha:
            alpha = total / i
    return min(beta + alpha * delta * 2 * m, 1.0)


def _direct_search(m, r, v, delta, confidence):
    """The largest eps whose p-value stays below 1 - confidence, by bisection on eps to 1e-12."""
    level = 1 - confidence
    if _paper_p_value(m, r, v, 0.0, delta) >= level:
        return 0.0
    lo, hi = 0.0, 1.0
    while _paper_p_value(m, r, v, hi, delta) < level:
        hi *= 2
    while hi - lo > 1e-12:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _paper_p_value(m, r, v, mid, delta) < level else (lo, mid)
    return lo


@pytest.mark.parametrize("m, r, v, delta", [(1000, 100, 80, 0.0), (1000, 100, 80, 1e-5), (5000, 500, 300, 1e-5),
                                            (200, 20, 19, 1e-4), (10_000, 2000, 1200, 1e-6), (1000, 100, 55, 0.0)])
def test_the_bound_equals_a_direct_search_over_binomial_tails(m, r, v, delta):
    ours = epsilon_lower_bound(m, r, v, delta, 0.95)
    assert abs(ours - _direct_search(m, r, v, delta, 0.95)) < 1e-6
    for eps in (0.1, 0.5, 1.0, 3.0):
        assert p_value(m, r, v, eps, delta) == pytest.approx(_paper_p_value(m, r, v, eps, delta), rel=1e-9, abs=1e-15)


def test_chance_guesses_prove_nothing_and_delta_weakens_the_bound():
    assert epsilon_lower_bound(1000, 100, 50, 0.0) == 0.0
    assert epsilon_lower_bound(1000, 100, 80, 1e-3) < epsilon_lower_bound(1000, 100, 80, 1e-6) < epsilon_lower_bound(1000, 100, 80, 0.0)


def test_guesses_take_the_highest_and_lowest_scores():
    g = guesses(np.array([0.5, 0.9, 0.1, 0.7, 0.3]), 2, 1)
    assert g.tolist() == [0, 1, -1, 1, 0]
    assert default_grid(1000)[0] == (5, 5) and default_grid(1000)[-1] == (500, 500)
    record = one_run_bound(np.arange(10.0), np.arange(10) >= 5, delta=0.0, k=(3, 3))
    assert record["correct"] == 6 and record["guesses"] == 6 and record["selection"] == "fixed in advance"
    assert record["valid_as_dp_bound"] is True
