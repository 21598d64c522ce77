"""The reference-free quantile attack and the descriptive one-run epsilon figure, each against an
independent computation: QMIA's false-positive rate on held-out population data, and the figure
against Clopper-Pearson intervals from scipy.stats.binomtest."""

import numpy as np
import pytest
from scipy.stats import binomtest

from robustmia.privacy.attacks import AttackInputs, run_attack
from robustmia.privacy.attacks.quantile import QMIA_FPR
from robustmia.privacy.metrics import epsilon_estimate_one_run, evaluate_scores, operating_points


def _population(n: int, rng) -> dict[str, np.ndarray]:
    """Non-members whose score depends on the example (its class and its pixels) plus noise."""
    label = rng.integers(0, 4, n)
    pixels = rng.random((n, 16))
    score = 2.0 * label + 3.0 * pixels[:, 0] - 2.0 * pixels[:, 1] + rng.normal(0, 0.5 + 0.5 * pixels[:, 2], n)
    return {"label": label.astype(float), "pixels": pixels, "lira": score}


def test_qmia_quantile_model_is_calibrated_on_held_out_population():
    rng = np.random.default_rng(0)
    fit, held_out = _population(20_000, rng), _population(20_000, rng)
    inputs = AttackInputs(target=held_out, labels=held_out["label"].astype(int), population=fit)
    out = run_attack("qmia", inputs)
    assert out.threshold == 0.0 and out.threshold_selection == "quantile"
    fpr = np.mean(out.scores >= 0)  # every held-out example is a non-member
    assert abs(fpr - QMIA_FPR) <= 0.01, fpr
    # per-example thresholds beat one global threshold at the same FPR on members that score a little higher
    members = _population(20_000, rng)
    members["lira"] = members["lira"] + 1.0
    both = {k: np.r_[members[k], held_out[k]] for k in held_out}
    member = np.r_[np.ones(20_000, bool), np.zeros(20_000, bool)]
    scores = run_attack("qmia", AttackInputs(target=both, labels=both["label"].astype(int), population=fit)).scores
    tpr_qmia = evaluate_scores(scores, member, n_bootstrap=0).tpr_at_fpr["0.01"]
    tpr_global = evaluate_scores(both["lira"], member, n_bootstrap=0).tpr_at_fpr["0.01"]
    assert tpr_qmia > 2 * tpr_global, (tpr_qmia, tpr_global)


def _direct_bound(scores: np.ndarray, member: np.ndarray, delta: float) -> float:
    """max over thresholds of the epsilon bound with scipy's exact (Clopper-Pearson) intervals, Bonferroni over
    both rates and the m thresholds: a two-sided interval at 1 - 0.05/m has one-sided upper ends at 1 - 0.025/m."""
    thresholds = np.r_[np.inf, np.unique(scores)[::-1]]
    m = len(thresholds)
    best = 0.0
    n_pos, n_neg = int(member.sum()), int((~member).sum())
    for t in thresholds:
        pred = scores >= t
        fp, fn = int(np.sum(pred & ~member)), int(np.sum(~pred & member))
        fpr = binomtest(fp, n_neg).proportion_ci(confidence_level=1 - 0.05 / m, method="exact").high
        fnr = binomtest(fn, n_pos).proportion_ci(confidence_level=1 - 0.05 / m, method="exact").high
        for a, b in ((fnr, fpr), (fpr, fnr)):
            if 1 - delta - a > 0 and b > 0:
                best = max(best, np.log((1 - delta - a) / b))
    return best


@pytest.mark.parametrize("shift", [0.0, 1.0, 3.0])
def test_epsilon_lower_bound_equals_a_direct_clopper_pearson_computation(shift):
    rng = np.random.default_rng(1)
    member = np.r_[np.ones(150, bool), np.zeros(200, bool)]
    scores = np.round(rng.normal(size=350) + shift * member, 2)  # ties too
    got = epsilon_estimate_one_run(operating_points(scores, member), delta=1e-5)
    assert got["value"] == pytest.approx(_direct_bound(scores, member, 1e-5), rel=1e-9, abs=1e-12)
    assert got["interval"][0] == got["value"] and (got["interval"][1] is None or got["interval"][1] >= got["value"])
    assert (got["value"] > 0) == (shift > 0)


def test_epsilon_interval_of_a_control_contains_zero():
    """Scores of examples none of which a model trained on, labelled members or not at random."""
    rng = np.random.default_rng(2)
    for seed in range(5):
        scores = rng.normal(size=600)
        member = rng.permutation(np.r_[np.ones(300, bool), np.zeros(300, bool)])
        e = evaluate_scores(scores, member, n_bootstrap=0, seed=seed).epsilon_estimate_one_run
        assert e["interval"][0] == 0.0 and e["value"] == 0.0


def test_epsilon_bound_tries_at_most_ten_thousand_thresholds_on_large_audits():
    """Beyond 10,000 distinct scores the bound is taken at 10,000 of them, evenly spaced along the ROC curve
    (and Bonferroni over those), so that a million-example audit stays fast; it still finds leakage and no
    leakage."""
    rng = np.random.default_rng(3)
    member = rng.random(60_000) < 0.5
    leak = epsilon_estimate_one_run(operating_points(rng.normal(size=60_000) + 2.0 * member, member))
    none = epsilon_estimate_one_run(operating_points(rng.normal(size=60_000), member))
    assert leak["thresholds"] == none["thresholds"] == 10_000
    assert leak["value"] > 1.0 and none["value"] == 0.0
