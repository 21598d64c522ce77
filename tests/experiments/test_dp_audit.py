"""One-run DP audits end to end (experiments.dp_audit), and the numbers of an ordinary audit that must not
flatter: per-run epsilon figures named as what they are, oracle accuracies against their permutation null,
reference models as large as the target, LiRA's variance chosen by the number of references."""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import pytest

from robustmia.api import audit, dp_audit, run_study, train
from robustmia.data.canaries import Canaries, draw
from robustmia.training.config import TrainConfig
from tests.conftest import REPO

DP = dict(method="dpsgd", model="digits-mlp", train_size=300, epochs=30, batch_size=64, lr=0.5, momentum=0.0, weight_decay=0.0,
          canaries={"count": 200, "kind": "noise"})


@pytest.fixture(scope="module")
def dp_runs(tmp_path_factory):
    """DP-SGD on digits with 200 noise canaries, at a large accountant epsilon (noise 0.3) and a small one (noise 3)."""
    root = tmp_path_factory.mktemp("dp")
    for noise in (0.3, 3.0):
        train(TrainConfig(**DP, dp_noise=noise), root / f"noise-{noise}", device="cpu")
    return root


def test_dp_sgd_audited_in_one_run_is_sound_and_non_trivial_where_epsilon_is_large(dp_runs):
    found = {}
    for noise in (0.3, 3.0):
        result = dp_audit(dp_runs / f"noise-{noise}", attacks="confidence,loss", bootstrap=0, device="cpu")
        for a in result.attacks:
            d = a.details["dp_audit"]
            assert d["epsilon_lower_bound"] <= d["accountant_epsilon"], d  # soundness
            assert d["valid_as_dp_bound"] and d["canaries"] == "noise" and d["m"] == 200 and d["delta"] == 1e-5
            assert d["selection"].startswith("best of") and d["confidence"] == 0.95
        found[noise] = max(a.details["dp_audit"]["epsilon_lower_bound"] for a in result.attacks), d["accountant_epsilon"]
    assert found[0.3][1] > 100 and found[0.3][0] > 1.0, found  # a large epsilon and strong canaries: a real bound
    assert found[3.0][1] < 5 and found[3.0][0] < found[3.0][1], found


def test_the_coins_decide_what_trains_and_references_keep_masks_ignore_them(dp_runs):
    from robustmia.training.run import Run

    from robustmia.data.datasets import load_dataset

    run = Run.open(dp_runs / "noise-0.3")
    train_set, _ = load_dataset("digits")
    candidates, coins = draw(run.config.canaries, train_set, run.split.pool_train, 10, run.config.seed)
    log = [json.loads(line) for line in (run.path / "log.jsonl").read_text().splitlines()]
    steps_per_epoch = log[0]["step"]
    assert steps_per_epoch == int(np.ceil((300 + coins.sum()) / 64))  # the members and the included canaries, no others
    again, coins_again = draw(run.config.canaries, train_set, run.split.pool_train, 10, run.config.seed)
    assert np.array_equal(coins, coins_again) and np.array_equal(candidates.images.numpy(), again.images.numpy())
    assert draw(Canaries(count=200, kind="noise", seed=1), train_set, run.split.pool_train, 10, 0)[1].tolist() != coins.tolist()


def test_reference_attacks_score_canaries_with_references_as_large_as_the_target(tmp_path):
    train(TrainConfig(model="digits-mlp", train_size=200, epochs=3, canaries={"count": 100, "kind": "mislabelled"}), tmp_path / "run",
          device="cpu")
    result = dp_audit(tmp_path / "run", attacks="confidence,lira", references=4, bootstrap=0, k=(20, 20), device="cpu")
    lira = result.get("lira").details["dp_audit"]
    assert lira["selection"] == "fixed in advance" and lira["guesses"] == 40 and lira["canaries"] == "mislabelled"
    assert lira["accountant_epsilon"] is None  # not a DP run
    folders = sorted((tmp_path / "run" / "dp-audit").glob("*/references-4/model-*"))
    assert len(folders) == 4
    counts = {}
    for folder in folders:
        ids = np.load(folder / "members.npz")["ids"]
        assert len(ids) >= 200 + 30  # the run's 200 members, plus this model's share (about half) of the 100 candidates
        for i in ids:
            counts[int(i)] = counts.get(int(i), 0) + 1
    canary_ids = set(result.ids.tolist())
    assert {counts.get(i, 0) for i in canary_ids} == {2}  # every candidate in exactly half of the 4, whatever its coin


SPEC = """
name: one-run
defaults: {dataset: digits, model: digits-mlp, train_size: 200, epochs: 20, batch_size: 64}
targets:
  - {name: natural, tables: [I], train: {method: natural, eps: 0.1}}
  - name: pgd
    tables: [I]
    train: {method: pgd, eps: 0.1, attack_steps: 3}
    dp_audit: {canaries: {count: 200, kind: noise}, attacks: [confidence, loss]}
  - name: dp
    tables: []
    train: {method: dpsgd, eps: 0.1, dp_noise: 0.5, lr: 0.5, momentum: 0.0, weight_decay: 0.0}
    dp_audit: {canaries: {count: 200, kind: noise}, attacks: [loss]}
audit: {attacks: [confidence, loss], bootstrap: 20}
frontier: true
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    (root / "spec.yaml").write_text(SPEC)
    run_study(root / "spec.yaml", root / "out", device="cpu")
    return root / "out"


def test_a_study_audits_a_robust_target_in_one_run_and_reports_what_the_bound_means(study):
    results = {r["name"]: r for r in json.loads((study / "results.json").read_text())}
    assert "dp_audit" not in results["natural"] and len(results["pgd"]["dp_audit"]) == 2 and len(results["dp"]["dp_audit"]) == 1
    table = json.loads((study / "report" / "tables" / "dp_audit.json").read_text())
    # each attack's row, then (for two attacks) the audit's statement over both, family-wise
    assert [row[0] for row in table["rows"]] == ["pgd", "pgd", "pgd", "dp"] and table["rows"][0][1] == "not DP"
    assert table["rows"][2][2].startswith("all 2 attacks (family-wise)")
    for row in table["rows"][:2]:  # per attack, at 95% each; over both, with the confidence split: never more
        assert float(row[6]) >= float(table["rows"][2][6])
    findings = (study / "report" / "findings.md").read_text()
    assert "lower bounds on any DP guarantee this recipe could have" in findings
    assert "over all 2 attacks and their guess counts (Bonferroni)" in findings and "refutes mu-GDP for every mu up to" in findings
    assert re.search(r"dp: a one-run DP audit .* the accountant's epsilon is [0-9.]+: both below it", findings)
    assert "Soundness, dp: the accountant's epsilon" in findings and "consistent, as it must be" in findings
    assert (study / "report" / "figures" / "dp_audit.png").is_file()
    html = (study / "report" / "report.html").read_text()
    assert "One-run DP audits" in html and "dp_audit" in html


def test_a_bug_warning_comes_only_from_a_valid_bound(study):
    from robustmia.reporting.frontier import soundness

    dp = next(r for r in json.loads((study / "results.json").read_text()) if r["name"] == "dp")
    for a in dp["attacks"]:  # a per-run estimate far above the accountant's epsilon is no bound: no warning
        a["epsilon_estimate_one_run"]["value"] = dp["dp"]["epsilon"] + 10
    assert soundness(dp) == []
    dp["dp_audit"][0]["epsilon_lower_bound"] = dp["dp"]["epsilon"] + 0.5  # one attack's bound alone, uncorrected: not the statement
    assert soundness(dp) == []
    dp["dp_audit"][0]["family_bound"]["epsilon_lower_bound"] = dp["dp"]["epsilon"] + 0.5  # the audit's statement above it: a bug
    assert len(soundness(dp)) == 1 and soundness(dp)[0].startswith("BUG: the one-run DP audit")
    dp["dp_audit"][0]["family_bound"]["epsilon_at_delta"] = dp["dp"]["epsilon"] + 0.5  # and the mu-GDP refuted, as an epsilon
    assert len(soundness(dp)) == 2


def test_no_text_claims_the_per_run_figure_bounds_dp(study):
    html = (study / "report" / "report.html").read_text()
    readme = (REPO / "README.md").read_text()
    for text in (html, readme, *(p.read_text() for p in (REPO / "docs").rglob("*.md"))):
        assert "empirical epsilon lower bound" not in text.lower() and "holds with 95% confidence as stated" not in text
    modern = json.loads((study / "report" / "tables" / "modern.json").read_text())
    assert "epsilon estimate (one run; no DP bound)" in modern["columns"] and "bounds no DP guarantee" in modern["caption"]
    record = json.loads((study / "results.json").read_text())[0]["attacks"][0]
    assert record["epsilon_estimate_one_run"]["valid_as_dp_bound"] is False and "empirical_epsilon" not in record


def test_reports_of_studies_made_before_the_rename_are_rebuilt(study, tmp_path):
    import shutil

    from robustmia.api import report

    old = tmp_path / "old"
    shutil.copytree(study, old)
    for path in [old / "results.json", *old.glob("audits/*/attacks.json")]:
        text = path.read_text().replace('"epsilon_estimate_one_run"', '"empirical_epsilon"').replace('"value":', '"lower_bound":')
        path.write_text(text)
    report(old)
    modern = json.loads((old / "report" / "tables" / "modern.json").read_text())
    assert all(row[modern["columns"].index("epsilon estimate (one run; no DP bound)")] for row in modern["rows"])


# --- oracle intervals that can say "no leak" ---------------------------------------------------------------------

def test_the_permutation_null_equals_a_direct_simulation():
    """The oracle accuracy of scores that carry no information, simulated directly (sklearn's ROC curve on fresh
    random scores and labels, 2,000 times): its 95th percentile matches the permutation null's."""
    from sklearn.metrics import roc_curve

    from robustmia.privacy.metrics import chance

    rng = np.random.default_rng(0)
    member = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    direct = []
    for _ in range(2000):
        fpr, tpr, _ = roc_curve(member, rng.random(200))
        direct.append(np.max(0.5 * (tpr + 1 - fpr)))
    ours = chance(rng.random(200), member, 0.5, None, 2000, seed=1)
    assert abs(ours["null95"] - np.percentile(direct, 95)) < 0.006, (ours["null95"], np.percentile(direct, 95))
    assert 0.55 < ours["null95"] < 0.62  # chance alone reaches about 58% at 100 + 100


def test_an_untrained_model_is_not_beyond_chance(tmp_path):
    """An untrained network audited 20 times (seeds 0-19): its oracle accuracies exceed 50% by construction, and their
    bootstrap intervals never reach it, but against the permutation null at a 5% family-wise level the findings call
    it beyond chance at most as often as that level allows (the 99.9% quantile of Binomial(20, 0.05): 4 of 20)."""
    import torch

    from robustmia.reporting.findings import chance_finding

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    claims = 0
    for seed in range(20):
        result = audit(net, "digits", list(range(seed * 30, seed * 30 + 200)), attacks="confidence,loss,entropy,modified-entropy",
                       bootstrap=50, seed=seed, out=tmp_path / f"a{seed}", device="cpu")
        records = result.records()
        text = chance_finding({"name": "untrained", "config": {"dataset": "digits"}, "attacks": records})
        claims += "beyond chance:" in text
    assert claims <= 4, claims


# --- reference models as large as the target; LiRA's variance ------------------------------------------------------

def test_reference_models_of_an_external_target_train_on_its_member_count(tmp_path, monkeypatch):
    """5,000-member CIFAR-sized training is too slow here: an npz dataset of digits with 600 members, audited on 50 of
    them (and 50 non-members). Each reference model trains on about 600 examples (half the 100 evaluated, plus 550
    unscored ones), and every evaluated example is in exactly half of them."""
    import torch
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "train.npz", images=x[:800], labels=y[:800])
    np.savez(tmp_path / "data" / "test.npz", images=x[800:], labels=y[800:])
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 10))
    save_file(net.state_dict(), str(tmp_path / "model.safetensors"))
    monkeypatch.chdir(tmp_path)
    result = audit(None, "npz", list(range(600)), arch="digits-mlp", weights="model.safetensors", data_dir="data",
                   reference_recipe="cpu-digits-natural", reference_train={"model": "digits-mlp", "epochs": 1}, attacks="lira",
                   references=4, eval_size=50, bootstrap=0, out=tmp_path / "audit", device="cpu")
    assert result.about["reference_train_size"] == {"references": 50 + 550, "target": 600}
    assert not any("train on about" in w for w in result.about.get("warnings", []))
    folders = sorted((tmp_path / "audit" / "audit").glob("*/references-4-*/model-*"))
    sizes, counts = [], {}
    for folder in folders:
        ids = np.load(folder / "members.npz")["ids"]
        sizes.append(len(ids))
        for i in ids:
            counts[int(i)] = counts.get(int(i), 0) + 1
    assert len(folders) == 4 and all(abs(s - 600) <= 15 for s in sizes), sizes
    assert {counts[int(i)] for i in result.ids} == {2}
    lira = result.get("lira")
    assert lira.details["variance"].startswith("fixed") and "4 reference models" in lira.details["variance"]


def test_lira_fits_one_variance_below_64_references_and_says_so():
    from robustmia.privacy.attacks import AttackInputs, run_attack

    rng = np.random.default_rng(0)
    for k, expect in ((8, "fixed"), (64, "per example")):
        keep = rng.random((k, 50)).argsort(0) < k // 2
        refs = [{"lira": rng.normal(size=50) + keep[j]} for j in range(k)]
        inputs = AttackInputs(target={"lira": rng.normal(size=50)}, labels=np.zeros(50, int), references=refs, keep=keep)
        chosen = run_attack("lira", inputs)
        assert chosen.details["variance"].startswith(expect)
        same = run_attack("lira-fixed" if expect == "fixed" else "lira-per-example", inputs)
        assert np.allclose(chosen.scores, same.scores)


def test_a_spec_with_a_dp_audit_on_an_external_target_is_refused(tmp_path, run_main):
    from tests.conftest import assert_one_line_error

    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent("""
        targets:
          - name: theirs
            external: {arch: digits-mlp, weights: w.safetensors, dataset: digits, members: m.json}
            dp_audit: {canaries: {count: 10}}
    """))
    assert_one_line_error(*run_main("run", str(spec), "--out", str(tmp_path / "out")), "external target cannot have one")
