"""`robustmia attack` end to end on digits with K=8 reference models per target recipe."""

import json

import numpy as np
import pytest

from robustmia.privacy.attacks.registry import ATTACKS
from tests.conftest import assert_one_line_error, cli

KEYS = {"attack", "threshold_selection", "n_members", "n_nonmembers", "inference_accuracy", "precision", "recall",
        "auprc", "kl_divergence", "roc_auc", "advantage", "tpr_at_fpr", "ci95"}


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    root = tmp_path_factory.mktemp("targets")
    recipes = {
        "natural": ["--model", "digits-mlp", "--epochs", "30", "--train-size", "500"],
        "pgd": ["--model", "digits-mlp", "--method", "pgd", "--eps", "0.1", "--epochs", "10", "--train-size", "500"],
    }
    for name, flags in recipes.items():
        r = cli("train", *flags, "--out", str(root / name), "--quiet")
        assert r.returncode == 0, r.stderr
    return root


@pytest.fixture(scope="module")
def records(targets):
    out = {}
    for name in ("natural", "pgd"):
        r = cli("attack", str(targets / name), "--attacks", ",".join(ATTACKS), "--references", "8",
                "--threshold", "both", "--bootstrap", "100", "--eps", "0.1", "--json",
                # the label-only probes at a small query budget (their accuracy is tested on toys in tests/privacy)
                "--boundary-bisections", "3", "--probe-steps", "3", "--noise-draws", "4", "--adv-restarts", "1")
        assert r.returncode == 0, r.stderr
        out[name] = json.loads(r.stdout)
    return out


def test_every_attack_runs_on_natural_and_pgd_targets(records):
    for name, recs in records.items():
        assert {r["attack"] for r in recs} == set(ATTACKS)
        for r in recs:
            assert KEYS <= r.keys()
            assert r["n_members"] == r["n_nonmembers"] == 500
            assert set(r["tpr_at_fpr"]) == {"0.001", "0.01"}
            lo, hi = r["ci95"]["roc_auc"]
            assert 0 <= lo <= hi <= 1
            assert 0.4 < r["roc_auc"] < 1.0
        shadow = [r for r in recs if r["threshold_selection"] == "shadow"]
        assert {r["attack"] for r in shadow} >= {"confidence", "loss", "adv-confidence"}


def test_lira_beats_the_global_confidence_threshold_at_low_fpr(records):
    by = {(r["attack"], r["threshold_selection"]): r for r in records["natural"]}
    lira, conf = by[("lira", "oracle")], by[("confidence", "oracle")]
    assert lira["tpr_at_fpr"]["0.01"] > conf["tpr_at_fpr"]["0.01"], (lira["tpr_at_fpr"], conf["tpr_at_fpr"])
    assert lira["roc_auc"] > conf["roc_auc"]


def test_reference_models_follow_the_target_recipe_and_are_cached(targets, records):
    folder = next((targets / "pgd" / "audit").glob("n500-seed0"))
    refs = sorted((folder / "references-8").glob("model-*"))
    assert len(refs) == 8
    config = json.loads((refs[0] / "config.json").read_text())
    target = json.loads((targets / "pgd" / "config.json").read_text())
    # the target's recipe; only the seed differs, and a reference model logs no test metrics (eval_every 0)
    assert {k: v for k, v in config.items() if k not in ("seed", "eval_every")} == {k: v for k, v in target.items() if k not in ("seed", "eval_every")}
    assert config["eval_every"] == 0 and "test_accuracy" not in json.loads((refs[0] / "log.jsonl").read_text().splitlines()[-1])
    stamp = (refs[3] / "checkpoint" / "model.safetensors").stat().st_mtime_ns
    r = cli("attack", str(targets / "pgd"), "--attacks", "lira", "--references", "8", "--bootstrap", "0", "--json")
    assert r.returncode == 0, r.stderr
    assert (refs[3] / "checkpoint" / "model.safetensors").stat().st_mtime_ns == stamp
    lira = [x for x in records["pgd"] if x["attack"] == "lira"][0]
    assert json.loads(r.stdout)[0]["roc_auc"] == lira["roc_auc"]


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--attacks", "confidence,magic"], "unknown attack magic"),
        (["--references", "5"], "must be even"),
        (["--threshold", "best"], "threshold"),
        (["--eps", "3", "--attacks", "adv-loss"], "not 8"),
    ],
)
def test_bad_attack_options(targets, run_main, flags, fragment):
    assert_one_line_error(*run_main("attack", str(targets / "natural"), "--json", *flags), fragment)


def test_rmia_without_population_says_how_to_fix(tmp_path, run_main):
    code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--out", str(tmp_path / "full"), "--quiet")
    assert code == 0, err
    assert_one_line_error(*run_main("attack", str(tmp_path / "full"), "--attacks", "rmia"), "population", "--eval-size")


def test_the_audit_stacks_reference_models_and_stacking_does_not_change_the_attack(tmp_path, monkeypatch):
    import shutil

    from robustmia.experiments import audit as audit_module
    from robustmia.experiments.audit import Audit
    from robustmia.experiments.settings import AuditSettings
    from robustmia.experiments.targets import RunTarget

    r = cli("train", "--model", "digits-mlp", "--method", "pgd", "--eps", "0.1", "--attack-steps", "3", "--epochs", "3",
            "--train-size", "120", "--out", str(tmp_path / "stacked"), "--quiet")
    assert r.returncode == 0, r.stderr
    shutil.copytree(tmp_path / "stacked", tmp_path / "one-by-one")
    stacks = []
    real = audit_module.train_stacked
    monkeypatch.setattr(audit_module, "train_stacked", lambda configs, *a, **k: stacks.append(len(configs)) or real(configs, *a, **k))
    records = {}
    for name, size in (("stacked", 4), ("one-by-one", 1)):
        settings = AuditSettings(attacks=["lira", "lira-offline"], references=8, stack_references=size, bootstrap=0, eval_size=60)
        records[name] = {x["attack"]: x for x in Audit(RunTarget(tmp_path / name), settings, device="cpu").run_attacks().records()}
    assert stacks == [4, 4]  # 8 reference models in two stacks of 4; none stacked with --stack-references 1
    for attack in ("lira", "lira-offline"):
        assert records["stacked"][attack]["roc_auc"] == pytest.approx(records["one-by-one"][attack]["roc_auc"], abs=1e-3)


def test_attacks_that_cannot_run_on_a_target_are_refused_by_name(tmp_path, run_main):
    code, _, err = run_main("train", "--model", "digits-cnn", "--epochs", "1", "--train-size", "100", "--out", str(tmp_path / "cnn"), "--quiet")
    assert code == 0, err
    assert_one_line_error(*run_main("attack", str(tmp_path / "cnn"), "--attacks", "verified-margin", "--eps", "0.1"),
                          "attack verified-margin needs a model the certified bounds handle", "MaxPool2d")
    assert_one_line_error(*run_main("attack", str(tmp_path / "cnn"), "--attacks", "label-noise"), "label-noise needs an epsilon", "--eps")
    assert_one_line_error(*run_main("attack", str(tmp_path / "cnn"), "--attacks", "grad-norm", "--bound", "best"), "bound")
    assert not (tmp_path / "cnn" / "audit").exists() or not any((tmp_path / "cnn" / "audit").rglob("attacks.json"))


def test_a_study_runs_certified_attacks_only_on_certifiable_targets(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("""
defaults: {dataset: digits, train_size: 100, epochs: 2, batch_size: 32}
targets:
  - {name: cnn, tables: [I], train: {method: natural, model: digits-cnn, eps: 0.1}}
  - {name: mlp, tables: [I], train: {method: natural, model: digits-mlp, eps: 0.1}, audit: {attacks: [confidence, verified-margin, qmia], eval_size: 50}}
audit: {attacks: [confidence, verified-margin], bootstrap: 0}
""")
    r = cli("run", str(spec), "--out", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 0, r.stderr
    results = {t["name"]: {a["attack"] for a in t["attacks"]} for t in json.loads((tmp_path / "out" / "results.json").read_text())}
    assert results == {"cnn": {"confidence"}, "mlp": {"confidence", "verified-margin", "qmia"}}
    spec.write_text(spec.read_text().replace("eval_size: 50", "eval_size: 0"))
    r = cli("run", str(spec), "--out", str(tmp_path / "other"), "--quiet")
    assert r.returncode == 2 and "target mlp: audit" in r.stderr and "eval_size" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_an_audit_makes_pgd_points_only_where_an_attack_reads_them(tmp_path, run_main):
    """confidence, adv-confidence and qmia: PGD points for the evaluation set alone (qmia reads the population's
    clean signals, nobody its PGD points), seen through the cache files the audit leaves."""
    code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "2", "--train-size", "100", "--eps", "0.1", "--out",
                            str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    code, _, err = run_main("attack", str(tmp_path / "run"), "--attacks", "confidence,adv-confidence,qmia", "--eval-size", "50",
                            "--population", "300", "--bootstrap", "0", "--quiet")
    assert code == 0, err
    audit = next((tmp_path / "run" / "audit").glob("n50-seed0"))
    evaluated = set(np.load(audit / "scores.npz")["ids"].tolist())
    perturbed = set()
    for cache in (tmp_path / "run").glob("perturbed-*.npz"):
        perturbed |= set(np.load(cache)["ids"].tolist())
    assert perturbed == evaluated  # 100 PGD points, none for the 300 population images
    assert [p.name.startswith("signals-target-population-clean") for p in audit.glob("signals-target-population-*.npz")] == [True]
    assert len(list(audit.glob("signals-target-pgd-*.npz"))) == 1
