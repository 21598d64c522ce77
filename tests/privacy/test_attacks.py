"""Attacks on synthetic signals where the right answer is known."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from robustmia.privacy.attacks import AttackInputs, run_attack
from robustmia.privacy.metrics import oracle_per_group, evaluate_scores


def _balanced_keep(k: int, n: int, rng) -> np.ndarray:
    order = rng.random((k, n)).argsort(0)
    return order < k // 2


def _gaussian_world(n=4000, k=64, d=1.0, seed=0):
    """phi_i ~ N(mu_i + d * in, 1) with mu_i ~ N(0, 2^2): the optimal test knows mu_i and
    thresholds phi_i - mu_i, so its ROC AUC is Phi(d / sqrt(2))."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 2, n)
    member = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    keep = _balanced_keep(k, n, rng)
    ref = mu + d * keep + rng.normal(0, 1, (k, n))
    target = mu + d * member + rng.normal(0, 1, n)
    inputs = AttackInputs(target={"lira": target}, labels=np.zeros(n, int), references=[{"lira": r} for r in ref], keep=keep)
    return inputs, member, norm.cdf(d / np.sqrt(2))


def test_balanced_keep_masks():
    keep = _balanced_keep(16, 100, np.random.default_rng(0))
    assert (keep.sum(0) == 8).all()


@pytest.mark.parametrize("name", ["lira", "lira-fixed", "lira-offline", "lira-offline-fixed"])
def test_lira_is_near_optimal_on_gaussians(name):
    inputs, member, optimum = _gaussian_world()
    auc = roc_auc_score(member, run_attack(name, inputs).scores)
    assert abs(auc - optimum) < 0.02, (auc, optimum)
    # the global threshold on phi ignores mu_i and is far from optimal
    assert roc_auc_score(member, inputs.target["lira"]) < optimum - 0.1


def _rmia_world(n=3000, nz=2000, k=16, seed=1):
    """Confidences whose difficulty varies per example; members get a boost."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(1, 1.5, n + nz)
    member = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    keep = _balanced_keep(k, n, rng)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    ref = [{"confidence": sig(logit[:n] + 1.0 * keep[j] + rng.normal(0, 0.3, n))} for j in range(k)]
    ref_z = [{"confidence": sig(logit[n:] + rng.normal(0, 0.3, nz))} for _ in range(k)]
    target = {"confidence": sig(logit[:n] + 1.0 * member + rng.normal(0, 0.3, n))}
    pop = {"confidence": sig(logit[n:] + rng.normal(0, 0.3, nz))}
    return AttackInputs(target, np.zeros(n, int), ref, keep, pop, ref_z), member


@pytest.mark.parametrize("name", ["rmia", "rmia-offline"])
def test_rmia_beats_the_plain_confidence_threshold(name):
    inputs, member = _rmia_world()
    rmia_auc = roc_auc_score(member, run_attack(name, inputs).scores)
    plain_auc = roc_auc_score(member, inputs.target["confidence"])
    assert rmia_auc > plain_auc + 0.05 and rmia_auc > 0.8


def test_shadow_threshold_is_learned_on_reference_models_only():
    inputs, member = _rmia_world()
    res = run_attack("confidence", inputs, selection="shadow")
    assert res.threshold_selection == "shadow" and res.threshold is not None
    ref = np.concatenate([r["confidence"] for r in inputs.references])
    kept = inputs.keep.ravel()
    acc = lambda t: np.mean((ref >= t) == kept)  # noqa: E731
    brute = max(acc(t) for t in np.unique(ref))
    assert abs(acc(res.threshold) - brute) < 1e-12
    m = evaluate_scores(res.scores, member, threshold=res.threshold, n_bootstrap=0)
    oracle = evaluate_scores(res.scores, member, n_bootstrap=0)
    assert m.inference_accuracy <= oracle.inference_accuracy + 1e-12
    assert m.inference_accuracy > 0.55


def test_per_class_oracle_thresholds_are_at_least_as_good_as_global():
    rng = np.random.default_rng(4)
    n = 2000
    labels = rng.integers(0, 5, n)
    member = rng.random(n) < 0.5
    conf = 1 / (1 + np.exp(-(labels - 2 + member * 1.0 + rng.normal(0, 1, n))))
    inputs = AttackInputs({"confidence": conf}, labels)
    glob = evaluate_scores(run_attack("confidence", inputs).scores, member, n_bootstrap=0)
    res = run_attack("confidence", inputs, per_class=True)  # the attack names the classes; the metrics pick on the truth
    assert res.threshold is None and np.array_equal(res.oracle_groups, labels)
    per = evaluate_scores(oracle_per_group(res.scores, member, res.oracle_groups), member, threshold=0.0, n_bootstrap=0)
    assert per.inference_accuracy >= glob.inference_accuracy


def test_shokri_attack_learns_from_shadow_models():
    rng = np.random.default_rng(5)
    n, k, c = 1000, 8, 4
    labels = rng.integers(0, c, n)
    member = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    keep = _balanced_keep(k, n, rng)

    def logits(is_in):
        z = rng.normal(0, 1, (n, c))
        z[np.arange(n), labels] += 1.0 + 2.0 * is_in
        return z

    inputs = AttackInputs({"logits": logits(member)}, labels, [{"logits": logits(keep[j])} for j in range(k)], keep)
    assert roc_auc_score(member, run_attack("shadow", inputs).scores) > 0.75


def _released_reference(phi, ref, keep, online, fixed):
    """The released code's computation (TensorFlow Privacy, research/mi_lira_2021/plot.py), written
    out per example: IN/OUT statistics cut to the smallest count, median, np.std with ddof 0; the
    membership score is minus the released "prediction" (its ROC sweep negates it)."""
    from scipy.stats import norm

    n = ref.shape[1]
    dat_in = [ref[keep[:, j], j] for j in range(n)]
    dat_out = [ref[~keep[:, j], j] for j in range(n)]
    size_in, size_out = min(map(len, dat_in)), min(map(len, dat_out))
    dat_in = np.array([x[:size_in] for x in dat_in])
    dat_out = np.array([x[:size_out] for x in dat_out])
    mean_in, mean_out = np.median(dat_in, 1), np.median(dat_out, 1)
    if online:
        std_in, std_out = (np.std(dat_in), np.std(dat_in)) if fixed else (np.std(dat_in, 1), np.std(dat_out, 1))
        prediction = -norm.logpdf(phi, mean_in, std_in + 1e-30) + norm.logpdf(phi, mean_out, std_out + 1e-30)
    else:
        std_out = np.std(dat_out) if fixed else np.std(dat_out, 1)
        prediction = norm.logpdf(phi, mean_out, std_out + 1e-30)
    return -prediction


@pytest.mark.parametrize("online, fixed", [(True, False), (False, False), (True, True), (False, True)])
def test_released_lira_variant_reproduces_the_authors_code(online, fixed):
    rng = np.random.default_rng(5)
    inputs, member, _ = _gaussian_world(n=600, k=16)
    inputs.keep = rng.random(inputs.keep.shape) < 0.5  # uneven IN/OUT counts: the released code cuts them to the smallest
    name = {(True, False): "lira-released", (False, False): "lira-offline-released",
            (True, True): "lira-fixed-released", (False, True): "lira-offline-fixed-released"}[(online, fixed)]
    ours = run_attack(name, inputs).scores
    reference = _released_reference(inputs.target["lira"], inputs.reference_matrix("lira"), inputs.keep, online, fixed)
    assert np.allclose(ours, reference, rtol=0, atol=1e-9)
    # and robustmia's own LiRA differs from it (mean, ddof 1, one-sided offline), as the README says
    own = run_attack(name.removesuffix("-released"), inputs).scores
    assert not np.allclose(own, reference, atol=1e-6)
