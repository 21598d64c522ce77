"""Gaussian-DP audits (privacy.gdp) and the family-wise one-run statement (privacy.dp_audit): each bound against a direct
computation, and on simulated mechanisms of known privacy, how often a bound exceeds the truth (it may in at most
5% of runs, the level of a 95% bound; the tests allow that plus three times its sampling error at their trial count)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from robustmia.privacy.dp_audit import epsilon_lower_bound, headline, one_run_bound
from robustmia.privacy.gdp import (clopper_pearson_upper, delta_of, epsilon_of_mu, mu_lower_bound, mu_of_epsilon,
                                   multirun_mu_lower_bound, refutes)

TRIALS = 200
LEVEL = 0.05
ALLOWED = LEVEL + 3 * math.sqrt(LEVEL * (1 - LEVEL) / TRIALS)  # 0.096 at 200 trials


def _refutes_written_out(mu, m, c_cap, c, level):
    """Mahloujifar, Melis & Chaudhuri's recursion with its arrays written out, as the paper states it."""
    tau = level * c_cap / m
    r = [0.0] * (c + 1)
    h = [0.0] * (c + 1)
    r[c], h[c] = tau * c / c_cap, tau * (c_cap - c) / c_cap
    for i in range(c - 1, -1, -1):
        h[i] = max(h[i + 1], norm.cdf(norm.ppf(r[i + 1]) - mu) if r[i + 1] > 0 else 0.0)
        r[i] = r[i + 1] + i / (c_cap - i) * (h[i] - h[i + 1])
    return r[0] + h[0] > c_cap / m


def test_the_recursion_equals_the_one_written_out_and_the_published_example():
    rng = np.random.default_rng(1)
    for _ in range(300):
        m = int(rng.integers(10, 400))
        r = int(rng.integers(1, m + 1))
        v = int(rng.integers(0, r + 1))
        mu = float(rng.uniform(0.01, 4))
        assert refutes(mu, m, r, v, 0.05) == _refutes_written_out(mu, m, r, v, 0.05), (mu, m, r, v)
    # the example: 1,000 canaries, all guessed, 90% right: Steinke 2.02, the f-DP audit's epsilon 3.78 (delta 1e-5)
    assert epsilon_lower_bound(1000, 1000, 900, 1e-5, 0.95) == pytest.approx(2.02, abs=0.005)
    mu = mu_lower_bound(1000, 1000, 900, 0.95)
    assert epsilon_of_mu(mu, 1e-5) == pytest.approx(3.78, abs=0.005)
    # the bound is the edge of what is refuted: just above it nothing is, and nothing at all at chance
    assert refutes(mu * 0.999, 1000, 1000, 900, 0.05) and not refutes(mu * 1.001, 1000, 1000, 900, 0.05)
    assert mu_lower_bound(1000, 1000, 500, 0.95) == 0.0  # (not the last point of a grid, as PrivacyGuard's tutorial returns)


def test_the_gaussian_dp_conversions_are_each_others_inverses():
    for mu in (0.3, 1.0, 2.5):
        for delta in (1e-5, 1e-3):
            eps = epsilon_of_mu(mu, delta)
            assert delta_of(mu, eps) == pytest.approx(delta, rel=1e-6)
            assert mu_of_epsilon(eps, delta) == pytest.approx(mu, rel=1e-6)
    assert epsilon_of_mu(0.0, 1e-5) == 0.0 and epsilon_of_mu(1.0, 0.99) == 0.0


def test_clopper_pearson_bounds_equal_scipys_exact_interval():
    for k, n in ((0, 10), (3, 10), (9, 10), (17, 200)):
        alpha = 0.01
        exact = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").high
        assert clopper_pearson_upper(np.array([k]), n, alpha)[0] == pytest.approx(exact, rel=1e-9)
    assert clopper_pearson_upper(np.array([10]), 10, 0.01)[0] == 1.0


def _coins(rng, m):
    return rng.random(m) < 0.5


def _rr(eps):
    q = math.exp(eps) / (1 + math.exp(eps))
    return lambda rng, b: np.where(rng.random(len(b)) < q, b, ~b).astype(float) + 1e-9 * rng.random(len(b))


def _gaussian(mu):
    return lambda rng, b: mu * b + rng.normal(size=len(b))


# (mechanism, its epsilon at delta, its mu of mu-GDP): randomised response at epsilon 1 and 2 is pure epsilon-DP, and
# mu-GDP for mu = 2 Phi^-1(e^eps / (1 + e^eps)) (its trade-off's kink); the Gaussian mechanism at mu is mu-GDP.
MECHANISMS = {
    "randomised response, epsilon 1": (_rr(1.0), 0.0, 1.0, 2 * norm.ppf(math.e / (1 + math.e))),
    "randomised response, epsilon 2": (_rr(2.0), 0.0, 2.0, 2 * norm.ppf(math.e**2 / (1 + math.e**2))),
    "Gaussian, mu 0.5": (_gaussian(0.5), 1e-5, epsilon_of_mu(0.5, 1e-5), 0.5),
    "Gaussian, mu 1": (_gaussian(1.0), 1e-5, epsilon_of_mu(1.0, 1e-5), 1.0),
    "Gaussian, mu 2": (_gaussian(2.0), 1e-5, epsilon_of_mu(2.0, 1e-5), 2.0),
}


@pytest.mark.parametrize("name", list(MECHANISMS))
def test_no_bound_exceeds_the_truth_of_a_mechanism_of_known_privacy(name):
    """Each of 200 simulated runs: 500 canaries by fair coins through the mechanism, one attack guessing all of them (k fixed
    in advance: half each way), and 200 independent runs of the mechanism for the multi-run bound."""
    mechanism, delta, true_eps, true_mu = MECHANISMS[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    over = {"steinke epsilon": 0, "one-run mu": 0, "multi-run mu": 0}
    found = {key: [] for key in over}
    for _ in range(TRIALS):
        b = _coins(rng, 500)
        record = one_run_bound(mechanism(rng, b), b, delta=delta, confidence=0.95, k=(250, 250))
        runs = _coins(rng, 200)
        scores = mechanism(rng, runs)
        multi = multirun_mu_lower_bound(scores[runs], scores[~runs], 0.95)
        for key, value, truth in (("steinke epsilon", record["epsilon_lower_bound"], true_eps),
                                  ("one-run mu", record["gdp"]["mu_lower_bound"], true_mu),
                                  ("multi-run mu", multi["mu_lower_bound"], true_mu)):
            over[key] += value > truth * (1 + 1e-9)
            found[key].append(value)
    rates = {key: count / TRIALS for key, count in over.items()}
    print(name, "exceedance rates", rates, "(allowed", round(ALLOWED, 3), ")", {k: round(float(np.mean(v)), 3) for k, v in found.items()})
    assert all(rate <= ALLOWED for rate in rates.values()), rates
    assert np.mean(found["steinke epsilon"]) > 0 and np.mean(found["one-run mu"]) > 0  # not vacuous: they find something
    if true_mu >= 1:  # where the signal is strong, the f-DP audit refutes more than Steinke's bound (as epsilons at delta)
        fdp = np.mean([epsilon_of_mu(mu, delta or 1e-5) for mu in found["one-run mu"]])
        assert fdp >= np.mean(found["steinke epsilon"])


def test_the_headline_over_four_unrelated_attacks_holds_its_level_on_null_runs():
    """300 runs of a mechanism that ignores its canaries, each audited by 4 attacks whose scores are noise: the headline
    (family-wise over the attacks and the guess grid) is above 0 in at most 5% of runs plus sampling error; the best of
    the 4 uncorrected per-attack bounds is above 0 more often (the reason for the correction)."""
    rng = np.random.default_rng(7)
    runs, above, above_gdp, uncorrected = 300, 0, 0, 0
    for _ in range(runs):
        b = _coins(rng, 200)
        records = []
        for attack in range(4):
            scores = rng.random(200)
            own = one_run_bound(scores, b, delta=1e-5)
            family = one_run_bound(scores, b, delta=1e-5, family=4)
            records.append({**own, "attack": f"a{attack}", "family_bound": {
                "attacks": 4, "epsilon_lower_bound": family["epsilon_lower_bound"], "mu_lower_bound": family["gdp"]["mu_lower_bound"],
                "epsilon_at_delta": family["gdp"]["epsilon_at_delta"]}})
        h = headline(records)
        above += h["epsilon_lower_bound"] > 0
        above_gdp += h["mu_lower_bound"] > 0
        uncorrected += max(r["epsilon_lower_bound"] for r in records) > 0 or max(r["gdp"]["mu_lower_bound"] for r in records) > 0
    allowed = LEVEL + 3 * math.sqrt(LEVEL * (1 - LEVEL) / runs)  # 0.088
    print("null runs: headline epsilon > 0 in", above / runs, ", mu > 0 in", above_gdp / runs, ", uncorrected best of 4 in",
          uncorrected / runs, "(allowed", round(allowed, 3), ")")
    assert above / runs <= allowed and above_gdp / runs <= allowed
    assert uncorrected >= max(above, above_gdp)


def test_multirun_bound_rests_on_its_counts():
    separated = multirun_mu_lower_bound(np.arange(100) + 1000.0, np.arange(100), 0.95)
    # every run told apart: at the best threshold no false positive or negative, each rate bounded by Clopper-Pearson at
    # 0.05 / (2 x 201 thresholds)
    bound = clopper_pearson_upper(np.array([0]), 100, 0.05 / (2 * 201))[0]
    assert separated["fpr_upper"] == pytest.approx(bound) and separated["fnr_upper"] == pytest.approx(bound)
    assert separated["mu_lower_bound"] == pytest.approx(norm.ppf(1 - bound) - norm.ppf(bound))
    assert multirun_mu_lower_bound([0.5] * 50, [0.5] * 50)["mu_lower_bound"] == 0.0
    with pytest.raises(ValueError):
        multirun_mu_lower_bound([], [1.0])
