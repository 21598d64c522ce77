"""The honest headline (metrics.calibrated): its 95% interval's coverage, measured on simulated audits.

- no-leak controls (members' and non-members' scores drawn alike): the interval must cover 50% in at least 93% of
  200 runs; the oracle's bootstrap interval, centred on a number picked on the very examples it scores, covers it far
  less often (the tests state both rates);
- a leak of known size (members' scores N(0.4, 1), non-members' N(0, 1)): the interval must cover the true accuracy
  of the thresholds it chose, computed from those distributions, in at least 93% of 200 runs; so must the interval at
  a threshold chosen elsewhere (shadow models).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from robustmia.privacy.metrics import _cross_fit, _halves, best_threshold, calibrated, evaluate_scores, operating_points

RUNS, N, LEAK = 200, 300, 0.4


def _true_accuracy(t: float) -> float:
    """The balanced accuracy of "member if score >= t" when members score N(LEAK, 1) and non-members N(0, 1)."""
    return (norm.sf(t - LEAK) + norm.cdf(t)) / 2


def _fold_thresholds(scores: np.ndarray, member: np.ndarray, seed: int) -> list[float]:
    half = _halves(member, seed)
    return [best_threshold(operating_points(scores[fit], member[fit]))[0] for fit in (half, ~half)]


def test_the_headline_interval_covers_chance_when_nothing_leaks_and_the_oracles_does_not():
    rng = np.random.default_rng(11)
    member = np.r_[np.ones(N, bool), np.zeros(N, bool)]
    covered = oracle_covered = 0
    for run in range(RUNS):
        scores = rng.normal(size=2 * N)  # members and non-members alike
        m = evaluate_scores(scores, member, n_bootstrap=200, seed=run)
        lo, hi = m.calibrated["ci95"]
        covered += lo <= 0.5 <= hi
        olo, ohi = m.ci95["inference_accuracy"]
        oracle_covered += olo <= 0.5 <= ohi
    rate, oracle_rate = covered / RUNS, oracle_covered / RUNS
    print(f"no-leak controls: the headline interval covers 50% in {rate:.1%}, the oracle's bootstrap interval in {oracle_rate:.1%}")
    assert rate >= 0.93
    assert oracle_rate < 0.5  # (measured: almost never; the oracle picks its threshold on the examples it scores)


def test_the_headline_interval_covers_the_true_accuracy_of_the_thresholds_it_chose():
    rng = np.random.default_rng(12)
    member = np.r_[np.ones(N, bool), np.zeros(N, bool)]
    covered = shadow_covered = 0
    for run in range(RUNS):
        scores = np.r_[rng.normal(LEAK, 1, N), rng.normal(0, 1, N)]
        c = calibrated(scores, member, None, run)
        truth = np.mean([_true_accuracy(t) for t in _fold_thresholds(scores, member, run)])
        assert len(_cross_fit(scores, member, run)) == 2
        covered += c["ci95"][0] <= truth <= c["ci95"][1]
        # a threshold chosen on other data (as shadow models give it): the accuracy at it on every example
        other = np.r_[rng.normal(LEAK, 1, N), rng.normal(0, 1, N)]
        t = best_threshold(operating_points(other, member))[0]
        s = calibrated(scores, member, t, run)
        shadow_covered += s["ci95"][0] <= _true_accuracy(t) <= s["ci95"][1]
    rate, shadow_rate = covered / RUNS, shadow_covered / RUNS
    print(f"leak of known size: the headline interval covers the chosen thresholds' true accuracy in {rate:.1%}; "
          f"at a threshold chosen elsewhere in {shadow_rate:.1%}")
    assert rate >= 0.93 and shadow_rate >= 0.93


def test_the_headline_is_the_split_accuracy_and_says_how_it_was_obtained():
    rng = np.random.default_rng(13)
    member = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    scores = np.r_[rng.normal(1, 1, 100), rng.normal(0, 1, 100)]
    m = evaluate_scores(scores, member, n_bootstrap=0, seed=3)
    assert m.calibrated["inference_accuracy"] == m.split_accuracy and "one half" in m.calibrated["how"]
    assert m.calibrated["inference_accuracy"] <= m.inference_accuracy  # the oracle's is optimistic
    given = evaluate_scores(scores, member, threshold=0.5, n_bootstrap=0, selection="shadow")
    assert given.calibrated["inference_accuracy"] == given.inference_accuracy and "given threshold" in given.calibrated["how"]


def test_per_class_oracle_thresholds_are_calibrated_per_class_on_one_half():
    """Per-class oracle thresholds are picked on the truth of every example: their calibrated estimate picks them per
    class on one half and scores the other, so it covers chance where nothing leaks (the oracle per class does not)."""
    from robustmia.privacy.attacks import AttackInputs
    from robustmia.privacy.results import run_attacks

    rng = np.random.default_rng(14)
    member = np.r_[np.ones(N, bool), np.zeros(N, bool)]
    covered, runs = 0, 60
    for run in range(runs):
        labels = rng.integers(0, 5, 2 * N)
        inputs = AttackInputs({"confidence": rng.random(2 * N)}, labels)
        (result,) = run_attacks(inputs, ["confidence"], member, per_class=True, bootstrap=0, seed=run)
        c = result.metrics.calibrated
        assert "one threshold per class" in c["how"] and c["inference_accuracy"] < result.metrics.inference_accuracy
        covered += c["ci95"][0] <= 0.5 <= c["ci95"][1]
    assert covered / runs >= 0.9, covered / runs
