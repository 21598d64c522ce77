"""What robustmia refuses, class by class: every case ends in exit code 2 and one line on stderr,
with no traceback, no folder created or changed, and (where no data is needed) before torch is imported,
which is what makes such a refusal quick (how quick is a benchmark's business, never a test's)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

PROBE = ("import sys\nfrom robustmia.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
         "    print('TORCH' if 'torch' in sys.modules else 'NOTORCH', e.code)\n")

SPEC = """
name: tiny
defaults: {dataset: digits, model: digits-mlp, train_size: 100, epochs: 2, batch_size: 32}
targets:
  - {name: natural, tables: [I], train: {method: natural, eps: 0.1}}
audit: {attacks: [confidence], bootstrap: 10}
"""


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def refuse(tmp_path: Path, *args: str, fragment: str, no_torch: bool = True, cwd: Path = None) -> None:
    """Run the CLI in a fresh process; assert the one-line refusal, that nothing under ``tmp_path``
    changed, and, for refusals that need no data, that torch was never imported."""
    before = _snapshot(tmp_path)
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd or tmp_path,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.stdout.split()[-1:] == ["2"], (r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("robustmia: error: ") and "Traceback" not in r.stderr, r.stderr
    assert fragment in lines[0], (fragment, lines[0])
    assert _snapshot(tmp_path) == before, "a refused command created or changed files"
    if no_torch:
        assert r.stdout.split()[0] == "NOTORCH", f"torch was imported before refusing: {lines[0]}"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    r = subprocess.run([sys.executable, "-m", "robustmia", "train", "--model", "digits-mlp", "--epochs", "2", "--out", str(root / "run"),
                        "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return root / "run"


# --- files that are not what they claim ---------------------------------------------------------


def test_a_config_or_spec_that_is_not_utf8(tmp_path):
    (tmp_path / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    refuse(tmp_path, "train", "--config", "binary.yaml", "--out", "x", fragment="is not UTF-8 text")
    (tmp_path / "utf16.yaml").write_bytes(SPEC.encode("utf-16"))
    refuse(tmp_path, "run", "utf16.yaml", "--out", "x", fragment="is not UTF-8 text")


def test_damaged_files_in_a_run_folder(tmp_path, run_dir):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "config.json").write_text('{"dataset": "digits", "epochs": "many"')  # truncated
    refuse(tmp_path, "evaluate", "run", fragment="config.json is damaged")
    (run / "config.json").write_text(json.dumps({"dataset": "digits", "epochs": "many"}))  # wrong types
    refuse(tmp_path, "evaluate", "run", fragment="epochs")
    (run / "config.json").write_text(json.dumps({"dataset": "digits", "model": "digits-mlp", "epochs": 2}))
    np.savez(run / "split.npz", members=np.array([], np.int64))
    refuse(tmp_path, "evaluate", "run", fragment="split.npz")


def test_prediction_files_with_no_rows_or_objects(tmp_path):
    np.savez(tmp_path / "empty.npz", labels=np.zeros(0, int), member=np.zeros(0, bool), logits=np.zeros((0, 3)))
    refuse(tmp_path, "audit-scores", "empty.npz", fragment="has no rows")
    np.savez(tmp_path / "objects.npz", labels=np.array([1, 2], dtype=object), member=np.array([1, 0]), logits=np.zeros((2, 3)))
    refuse(tmp_path, "audit-scores", "objects.npz", fragment="pickled (object) array")


def test_a_cifar_batch_with_no_images(tmp_path):
    import pickle

    folder = tmp_path / "c" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "test_batch"):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": np.zeros((0, 3072), np.uint8), "labels": []}, f, protocol=2)
    refuse(tmp_path, "train", "--dataset", "cifar10", "--data-dir", "c", "--model", "small-cnn", "--out", "x",
           fragment="has no or inconsistent data", no_torch=False)
    (tmp_path / "w.safetensors").write_bytes(b"not read: the data is refused first")
    (tmp_path / "members.json").write_text("[0, 1]")
    refuse(tmp_path, "attack", "--arch", "small-cnn", "--weights", "w.safetensors", "--dataset", "cifar10", "--data-dir", "c",
           "--members", "members.json", "--out", "o", fragment="has no or inconsistent data", no_torch=False)


# --- output paths ------------------------------------------------------------------------------


def test_out_below_a_file_or_not_writable(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    refuse(tmp_path, "train", "--out", "file.txt/run", fragment="lies below")
    refuse(tmp_path, "train", "--out", "/proc/robustmia-run", fragment="cannot be written")


def test_out_naming_a_file_and_resume_of_nothing(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "results").write_text("x")
    refuse(tmp_path, "run", "spec.yaml", "--out", "results", fragment="is a file")
    refuse(tmp_path, "train", "--out", "nothing-here", "--resume", fragment="holds no run to resume")


# --- numbers that are not numbers --------------------------------------------------------------


@pytest.mark.parametrize("flags, fragment", [
    (["--lr", "inf"], "lr"),
    (["--method", "pgd", "--eps", "0.1", "--step-size", "nan"], "finite"),
    (["--seed", str(2**70)], "seed"),
    (["--model", "wrn-40-100000"], "too large"),
    (["--method", "pgd", "--eps", "8/255", "--step-size", "2"], "write 2/255, not 2"),
    (["--method", "pgd", "--eps", "8/255/2"], "fraction of a fraction"),
], ids=["lr-inf", "step-nan", "seed", "width", "step-2", "nested-fraction"])
def test_numbers_that_are_not_numbers(tmp_path, flags, fragment):
    refuse(tmp_path, "train", *flags, "--out", "x", fragment=fragment)


def test_json_output_is_strict():
    from robustmia.io import dumps

    text = dumps({"a": float("nan"), "b": [float("inf"), 1.5]})
    assert json.loads(text) == {"a": None, "b": [None, 1.5]} and "NaN" not in text and "Infinity" not in text


# --- checks that must come before anything runs --------------------------------------------------


@pytest.mark.parametrize("edit, fragment", [
    (lambda s: s.replace("train_size: 100", "train_size: 5000"), "larger than digits's train split (898 images)"),
    (lambda s: s.replace("{method: natural, eps: 0.1}", "{method: ibp, eps: 0.1, model: digits-cnn}"), "cannot certify digits-cnn"),
    (lambda s: s.replace("attacks: [confidence]", "attacks: [confidence, rmia]").replace("train_size: 100", "train_size: 850"),
     "rmia needs at least 100 population examples"),
], ids=["train-size", "certified-pooling", "rmia-population"])
def test_spec_checks_before_anything_runs(tmp_path, edit, fragment):
    (tmp_path / "spec.yaml").write_text(edit(SPEC))
    refuse(tmp_path, "run", "spec.yaml", "--out", "study", fragment=fragment)


def test_train_checks_before_anything_runs(tmp_path):
    refuse(tmp_path, "train", "--train-size", "5000", "--out", "x", fragment="larger than digits's train split")
    refuse(tmp_path, "train", "--device", "tpu", "--out", "x", fragment="unknown device 'tpu'")
    refuse(tmp_path, "train", "--method", "ibp", "--eps", "0.1", "--model", "digits-cnn", "--out", "x", fragment="cannot certify digits-cnn")


# --- slow refusals -------------------------------------------------------------------------------


def test_refusals_of_every_command_come_before_torch(tmp_path):
    refuse(tmp_path, "evaluate", "nope", fragment="does not exist")
    refuse(tmp_path, "attack", "nope", "--attacks", "confidence", fragment="does not exist")
    refuse(tmp_path, "attack", "--attacks", "magic", "--arch", "x", fragment="unknown attack magic")
    refuse(tmp_path, "audit-scores", "nope.npz", fragment="does not exist")
    refuse(tmp_path, "evaluate", "nope", "--device", "gpu7", fragment="unknown device")


def test_a_run_folder_whose_config_was_edited_after_training_is_refused(tmp_path):
    """The checkpoint records the config it was trained with: a config.json changed afterwards (here the number of
    canaries, which would make a one-run audit score examples the model never had a coin for) is refused by every
    command that reads the run, in one line naming the field."""
    r = subprocess.run([sys.executable, "-m", "robustmia", "train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "100",
                        "--set", "canaries={count: 20, kind: noise}", "--out", str(tmp_path / "run"), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["canaries"]["count"] = 40
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    for command in (["dp-audit", "run"], ["evaluate", "run"], ["attack", "run"]):
        refuse(tmp_path, *command, fragment="says canaries = ")


def test_a_run_that_another_process_is_training_is_refused(tmp_path, run_dir):
    from robustmia.locks import folder_lock

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    with folder_lock(run):  # as a training process holds it
        for command in (["evaluate", "run"], ["attack", "run"]):
            refuse(tmp_path, *command, fragment="is being trained by another robustmia process", no_torch=False)


def test_an_unfinished_run_is_audited_at_its_checkpoint_which_the_audit_records(tmp_path, run_dir):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    meta = json.loads((run / "checkpoint" / "meta.json").read_text())
    meta["epoch"] = 1  # as a run stopped after its first of 2 epochs
    (run / "checkpoint" / "meta.json").write_text(json.dumps(meta))
    r = subprocess.run([sys.executable, "-m", "robustmia", "attack", str(run), "--attacks", "confidence", "--bootstrap", "0", "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "has not finished training: its checkpoint is at 1 of 2 epochs" in r.stderr
    about = json.loads(next((run / "audit").iterdir()).joinpath("attacks.json").read_text())["about"]
    assert about["checkpoint"] == {"epoch": 1, "step": meta["step"], "of": 2, "unit": "epochs", "finished": False}
    assert any("has not finished training" in w for w in about["warnings"])


def test_silent_ignores_are_said_and_error_lines_stay_readable(tmp_path, run_dir):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    refuse(tmp_path, "attack", "run", "--reference-train", "epochs=2", fragment="--reference-train sets the reference recipe's settings")
    r = subprocess.run([sys.executable, "-m", "robustmia", "attack", str(run), "--attacks", "confidence", "--reference-recipe",
                        "cpu-digits-natural", "--bootstrap", "0", "--json"], capture_output=True, text=True)
    assert r.returncode == 0 and "--reference-recipe cpu-digits-natural is ignored" in r.stderr, r.stderr
    np.savez(tmp_path / "preds.npz", labels=np.zeros(10, int), member=np.r_[np.ones(5, bool), np.zeros(5, bool)], logits=np.ones((10, 3)))
    refuse(tmp_path, "audit-scores", "preds.npz", "--seed", "-1", fragment="seed")
    refuse(tmp_path, "audit-scores", "preds.npz", "--bootstrap", "100000000", fragment="bootstrap")
    # a damaged study results file with thousands of wrong values: one line a person reads, naming the first
    study = tmp_path / "study"
    study.mkdir()
    (study / "results.json").write_text(json.dumps([{"name": "t", "tables": [], "config": {"dataset": "digits", "model": "m",
                                                                                            "method": "natural", "eps": 0.0},
                                                     "evaluation": {}, "attacks": [{"attack": "x" * 5000}] * 50, "audit": "a"}]))
    before = _snapshot(tmp_path)
    r = subprocess.run([sys.executable, "-m", "robustmia", "report", str(study)], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and len(r.stderr) < 700, r.stderr[:300]
    assert "attack record 0" in r.stderr and _snapshot(tmp_path) == before
