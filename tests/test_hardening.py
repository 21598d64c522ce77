"""Hardening of the newer surfaces, one test per class of mistake (written from the class, not from one
case): code runs only where the user named it; numbers, images, datasets, report folders, plugins and
damaged files end in one line with exit code 2 and nothing created or changed; what is accepted but
probably not meant is warned about; kills and crashes leave folders that the next command can use."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, assert_one_line_error


def _tree(root: Path) -> dict[str, str]:
    """Every file below ``root`` with its content hash: what "nothing created or changed" compares."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _robustmia(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command, run from ``cwd`` with only robustmia's source on the path (not ``cwd``)."""
    full = {k: v for k, v in os.environ.items() if k not in ("ROBUSTMIA_ALLOW_CODE", "ROBUSTMIA_PLUGINS")}
    full.update({"PYTHONPATH": str(REPO / "src"), **(env or {})})
    return subprocess.run([sys.executable, "-m", "robustmia", *args], capture_output=True, text=True, cwd=cwd, env=full)


def _one_line(r: subprocess.CompletedProcess, *fragments: str) -> None:
    assert_one_line_error(r.returncode, r.stdout, r.stderr, *fragments)


@pytest.fixture(scope="module")
def ext(tmp_path_factory):
    """A model trained elsewhere: digits as an npz dataset, members, and digits-mlp weights (random, as saved)."""
    import torch
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits

    from robustmia.data.catalog import DatasetInfo
    from robustmia.models.external import build_architecture

    root = tmp_path_factory.mktemp("ext")
    (root / "data").mkdir()
    d = load_digits()
    x, y = (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64)
    np.savez(root / "data" / "train.npz", images=x[:600], labels=y[:600])
    np.savez(root / "data" / "test.npz", images=x[600:900], labels=y[600:900])
    (root / "members.json").write_text(json.dumps(list(range(0, 600, 3))))
    torch.manual_seed(0)
    net = build_architecture("digits-mlp", DatasetInfo("npz", (1, 8, 8), 10, (0.5,), (0.25,), "none", ""))
    save_file(net.state_dict(), str(root / "model.safetensors"))
    return root


EXT = ["--arch", "digits-mlp", "--weights", "model.safetensors", "--dataset", "npz", "--data-dir", "data", "--members", "members.json"]


# --- 1. code runs only where the user named it as code -------------------------------------------------

EVIL = '''
from pathlib import Path
Path("imported.txt").write_text("the module ran at import")


def make(**kwargs):
    Path("called.txt").write_text("the factory ran")
    import torch
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
'''


def _external_spec(root: Path, arch: str) -> Path:
    spec = root / f"spec-{arch.replace(':', '-')}.yaml"
    spec.write_text(textwrap.dedent(f"""
        name: external
        targets:
          - name: theirs
            external: {{arch: "{arch}", weights: model.safetensors, dataset: npz, data_dir: data, members: members.json}}
        audit: {{attacks: [confidence], bootstrap: 0}}
    """))
    return spec


def test_a_spec_naming_code_runs_nothing_unless_its_module_is_allowed(ext, tmp_path):
    for name in ("data", "members.json", "model.safetensors"):
        os.symlink(ext / name, tmp_path / name)
    (tmp_path / "evil.py").write_text(EVIL)
    spec = _external_spec(tmp_path, "evil:make")
    r = _robustmia(tmp_path, "run", str(spec), "--out", "study")
    _one_line(r, "evil:make", "is Python code", "--allow-code evil", "ROBUSTMIA_ALLOW_CODE")
    assert not (tmp_path / "imported.txt").exists() and not (tmp_path / "called.txt").exists() and not (tmp_path / "study").exists()
    # a standard-library function named the same way is refused the same way, and never runs
    _one_line(_robustmia(tmp_path, "run", str(_external_spec(tmp_path, "os:system")), "--out", "study"), "os:system", "--allow-code os")
    # allowed, by flag or by variable, the entry point is imported from the current folder and runs
    for how in (["--allow-code", "evil"], []):
        r = _robustmia(tmp_path, "run", str(spec), "--out", f"study{len(how)}", "--quiet", *how,
                       env={} if how else {"ROBUSTMIA_ALLOW_CODE": "evil"})
        assert (tmp_path / "imported.txt").exists() and (tmp_path / "called.txt").exists(), r.stderr
        # it ran, and then its weights were checked against what it built
        _one_line(r, "do not fit")
        (tmp_path / "imported.txt").unlink()
        (tmp_path / "called.txt").unlink()


def test_an_entry_point_given_as_a_flag_loads_from_the_current_folder_and_must_build_a_module(ext, tmp_path):
    for name in ("data", "members.json", "model.safetensors"):
        os.symlink(ext / name, tmp_path / name)
    (tmp_path / "mine.py").write_text(textwrap.dedent('''
        from torch import nn
        def mlp():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
        def not_a_model():
            return 42
        def exits():
            raise SystemExit(3)
    '''))
    args = EXT[4:]
    r = _robustmia(tmp_path, "evaluate", "--arch", "mine:mlp", "--weights", "model.safetensors", *args, "--normalize", "0.5/0.25",
                   "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_train"] == 200
    _one_line(_robustmia(tmp_path, "evaluate", "--arch", "mine:not_a_model", "--weights", "model.safetensors", *args),
              "returned a int, not a torch.nn.Module")
    _one_line(_robustmia(tmp_path, "evaluate", "--arch", "mine:exits", "--weights", "model.safetensors", *args), "sys.exit(3)")
    _one_line(_robustmia(tmp_path, "evaluate", "--arch", "nowhere:mlp", "--weights", "model.safetensors", *args),
              "cannot find the module 'nowhere'", "current folder")


# --- 3. numbers ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("normalize, fragment", [("0.5/inf", "finite"), ("0.5/nan", "finite"), ("0.5/1e-9", "std must lie"),
                                                 ("0.5/0.25,0.25", "as many means as stds")])
def test_normalisation_that_is_not_finite_or_absurd_is_refused(ext, run_main, tmp_path, monkeypatch, normalize, fragment):
    monkeypatch.chdir(ext)
    assert_one_line_error(*run_main("attack", *EXT, "--normalize", normalize, "--out", str(tmp_path / "a")), fragment)
    assert not (tmp_path / "a").exists()


def test_weights_holding_nan_or_infinity_are_refused(ext, run_main, tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    state = load_file(str(ext / "model.safetensors"))
    key = next(iter(state))
    for value in (float("nan"), float("inf")):
        bad = dict(state)
        bad[key] = bad[key].clone()
        bad[key].view(-1)[0] = value
        save_file(bad, str(tmp_path / "bad.safetensors"))
        args = [a if a != "model.safetensors" else str(tmp_path / "bad.safetensors") for a in EXT]
        monkeypatch.chdir(ext)
        assert_one_line_error(*run_main("evaluate", *args, "--out", str(tmp_path / "e")), key, "NaN or infinite")
    # a run whose training diverged: its checkpoint is refused by evaluate and attack
    code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "50", "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    weights = tmp_path / "run" / "checkpoint" / "model.safetensors"
    state = load_file(str(weights))
    state[key if key in state else next(iter(state))].view(-1)[0] = float("nan")
    save_file(state, str(weights))
    meta = json.loads((weights.parent / "meta.json").read_text())
    meta["sha256"]["model.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (weights.parent / "meta.json").write_text(json.dumps(meta))
    before = _tree(tmp_path / "run")
    for command in ("evaluate", "attack"):
        assert_one_line_error(*run_main(command, str(tmp_path / "run")), "NaN or infinite", "diverged")
    assert _tree(tmp_path / "run") == before


def test_training_that_diverges_stops_in_one_line(run_main, tmp_path):
    assert_one_line_error(*run_main("train", "--model", "digits-mlp", "--epochs", "2", "--lr", "100", "--momentum", "0",
                                    "--out", str(tmp_path / "r"), "--quiet"), "diverged", "lower lr")


def test_dp_noise_the_accountant_cannot_bound_is_refused_before_anything_is_written(run_main, tmp_path):
    assert_one_line_error(*run_main("train", "--method", "dpsgd", "--set", "dp_noise=1e-200", "--out", str(tmp_path / "dp")),
                          "dp_noise", "accountant")
    assert not (tmp_path / "dp").exists()


def test_a_dp_step_whose_poisson_batch_is_empty_is_taken_as_the_accountant_assumes(tmp_path):
    """At sample rate 1/10 over 10 members, about a third of the epochs have only empty batches; each step is taken
    (noise alone) and counted, and the accountant's epsilon is that of every step."""
    import torch

    from robustmia.api import train
    from robustmia.training.config import TrainConfig
    from robustmia.training.private import dp_epsilon

    config = TrainConfig(method="dpsgd", model="digits-mlp", train_size=10, batch_size=1, epochs=6, dp_noise=1.0)
    record = train(config, tmp_path / "dp", device="cpu")
    log = [json.loads(line) for line in (tmp_path / "dp" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [10 * (i + 1) for i in range(6)]
    assert record["dp_epsilon"] == pytest.approx(dp_epsilon(config, 10, 60))
    assert all(torch.isfinite(torch.tensor([r["test_loss"] for r in log])))


def test_early_stopping_without_held_out_images_is_refused_before_anything_is_written(run_main, tmp_path):
    assert_one_line_error(*run_main("train", "--method", "pgd", "--eps", "0.1", "--set", "early_stop=true", "--train-size", "898",
                                    "--out", str(tmp_path / "es")), "early stopping", "held-out", "smaller train_size")
    assert not (tmp_path / "es").exists()


# --- 3. images and datasets ---------------------------------------------------------------------------------

def _folders(root: Path, mode: str = "RGB", size=(10, 10), bomb: bool = False, splits=("members", "nonmembers")) -> Path:
    from PIL import Image

    for split in splits:
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(3):
                Image.new(mode, size, color=40 * i).save(root / split / c / f"{i}.png")
    if bomb:  # 6000 x 6000 of one colour: a few kB on disk, 108 MB once decoded
        Image.new("L", (6000, 6000)).save(root / splits[0] / "a" / "bomb.png")
    return root


def test_decompression_bombs_and_huge_image_sizes_are_refused(ext, run_main, tmp_path):
    root = _folders(tmp_path, bomb=True)
    args = ["--arch", "digits-mlp", "--weights", str(ext / "model.safetensors"), "--members-dir", str(root / "members"),
            "--nonmembers-dir", str(root / "nonmembers")]
    assert_one_line_error(*run_main("evaluate", *args, "--image-size", "8", "--out", str(tmp_path / "o")), "bomb.png", "at most 16,777,216")
    assert_one_line_error(*run_main("evaluate", *args, "--image-size", "100000", "--out", str(tmp_path / "o")), "image_size")
    layout = _folders(tmp_path / "layout", splits=("train", "test"))
    assert_one_line_error(*run_main("train", "--dataset", "imagefolder-100000", "--data-dir", str(layout), "--out", str(tmp_path / "t")),
                          "at most 512")
    assert not (tmp_path / "o").exists() and not (tmp_path / "t").exists()


def test_image_folders_whose_channels_differ_from_the_dataset_named_beside_them_are_refused(ext, run_main, tmp_path):
    root = _folders(tmp_path, mode="RGB", size=(8, 8))
    args = ["--arch", "digits-mlp", "--weights", str(ext / "model.safetensors"), "--members-dir", str(root / "members"),
            "--nonmembers-dir", str(root / "nonmembers"), "--dataset", "digits", "--out", str(tmp_path / "o")]
    assert_one_line_error(*run_main("evaluate", *args), "3 channel(s)", "digits's images have 1")
    grey = _folders(tmp_path / "grey", mode="L", size=(8, 8))
    args = [a.replace(str(root), str(grey)) for a in args]
    code, out, err = run_main("evaluate", *args, "--json", "--normalize", "0.5/0.25")
    assert code == 0, err
    assert json.loads(out)["n_train"] == 6


def _idx(path: Path, array: np.ndarray) -> None:
    header = (0x800 + array.ndim).to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("case", ["idx-size", "npz-channels", "npz-test-labels", "npz-one-class"])
def test_files_whose_images_or_labels_do_not_fit_their_dataset_are_refused(run_main, tmp_path, case):
    """GENERATED files in the original layouts, each wrong in one way."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    if case == "idx-size":  # MNIST's layout with 20x20 images
        raw = data / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for split, n in (("train", 30), ("t10k", 10)):
            _idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 20, 20)))
            _idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
        dataset, fragment = "mnist", "20x20"
    else:
        images = rng.integers(0, 256, (30, 8, 8, 4 if case == "npz-channels" else 1), dtype=np.uint8)
        labels = np.zeros(30, np.int64) if case == "npz-one-class" else np.arange(30) % 3
        np.savez(data / "train.npz", images=images, labels=labels)
        test_labels = np.arange(10) % 3 + (5 if case == "npz-test-labels" else 0)
        np.savez(data / "test.npz", images=images[:10], labels=test_labels)
        dataset, fragment = "npz", {"npz-channels": "1 or 3 channels", "npz-test-labels": "training classes",
                                    "npz-one-class": "at least two classes"}[case]
    assert_one_line_error(*run_main("train", "--dataset", dataset, "--data-dir", str(data), "--model", "digits-mlp", "--epochs", "1",
                                    "--out", str(tmp_path / "run")), fragment)
    assert not (tmp_path / "run").exists()


# --- 3. folders given to robustmia report --------------------------------------------------------------------

@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from robustmia.api import run_study

    root = tmp_path_factory.mktemp("study")
    spec = root / "spec.yaml"
    spec.write_text(textwrap.dedent("""
        name: tiny
        defaults: {dataset: digits, model: digits-mlp, train_size: 60, epochs: 2}
        targets:
          - {name: natural, tables: [I], train: {method: natural, eps: 0.1}}
        audit: {attacks: [confidence, adv-confidence], bootstrap: 10}
    """))
    run_study(spec, root / "out", device="cpu")
    return root / "out"


@pytest.mark.parametrize("damage, fragment", [
    (lambda r: r[0].pop("config"), "config"),
    (lambda r: r[0].update(tables="I"), "tables"),
    (lambda r: r[0]["attacks"][0].update(roc_auc="high"), "roc_auc"),
    (lambda r: r[0]["attacks"][0].pop("tpr_at_fpr"), "tpr_at_fpr"),
    (lambda r: r[0]["config"].update(eps="0.1"), "eps"),
    (lambda r: r.clear(), "not a list of target results"),
])
def test_report_validates_the_results_it_reads(study, run_main, tmp_path, damage, fragment):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    shutil.rmtree(copy / "report")
    results = json.loads((copy / "results.json").read_text())
    damage(results)
    (copy / "results.json").write_text(json.dumps(results))
    assert_one_line_error(*run_main("report", str(copy)), "results.json", fragment)
    assert not (copy / "report").exists()


def test_report_validates_the_audits_it_reads_and_where_it_writes(study, run_main, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    audit = copy / "audits" / "natural" / "attacks.json"
    saved = json.loads(audit.read_text())
    saved["attacks"][0]["n_members"] = "many"
    audit.write_text(json.dumps(saved))
    assert_one_line_error(*run_main("report", str(copy)), "attacks.json", "n_members")
    shutil.copytree(study, tmp_path / "copy2")
    shutil.rmtree(tmp_path / "copy2" / "report")
    (tmp_path / "copy2" / "report").write_text("a file where the report folder goes")
    assert_one_line_error(*run_main("report", str(tmp_path / "copy2")), "report", "is a file")


# --- 3. plugins ---------------------------------------------------------------------------------------------

PLUGIN = '''
import numpy as np
from robustmia.privacy.attacks import AttackScores, register_attack

@register_attack("plug", help="a plugin's attack")
def plug(inputs, options):
    n = len(inputs.labels)
    return {returns}
'''


@pytest.mark.parametrize("returns, fragment", [
    ("AttackScores(np.zeros(n - 1))", "returned 11 scores for 12 examples"),  # eval size 6 + 6 below
    ("AttackScores(np.full(n, np.nan))", "NaN or infinite"),
    ("AttackScores(np.array(['a'] * n))", "not numbers"),
    ("np.zeros(n)", "not AttackScores"),
    ("1 / 0", "ZeroDivisionError"),
    ("exit(4)", "sys.exit(4)"),
])
def test_a_plugin_attack_that_fails_is_one_line_naming_the_plugin_and_the_attack(tmp_path, returns, fragment):
    (tmp_path / "myplug.py").write_text(PLUGIN.format(returns=returns))
    code, _, err = _train_digits(tmp_path)
    r = _robustmia(tmp_path, "attack", "run", "--attacks", "confidence,plug", "--eval-size", "6", "--bootstrap", "0",
                   env={"ROBUSTMIA_PLUGINS": "myplug"})
    _one_line(r, "attack plug of the plugin myplug", fragment)


@pytest.mark.parametrize("body, fragment", [("raise RuntimeError('boom')", "RuntimeError: boom"), ("import sys; sys.exit(5)", "sys.exit(5)")])
def test_a_plugin_that_fails_when_imported_is_one_line(tmp_path, body, fragment):
    (tmp_path / "myplug.py").write_text(body + "\n")
    _one_line(_robustmia(tmp_path, "datasets", env={"ROBUSTMIA_PLUGINS": "myplug"}), "myplug", "ROBUSTMIA_PLUGINS", fragment)


def _train_digits(root: Path, *extra: str) -> tuple[int, str, str]:
    r = _robustmia(root, "train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "40", "--out", "run", "--quiet", *extra)
    return r.returncode, r.stdout, r.stderr


# --- 3. damaged files -------------------------------------------------------------------------------------------

def _bad_crc(path: Path) -> None:
    """Flip one byte inside the first member's data of an (uncompressed) npz: its CRC no longer matches."""
    raw = bytearray(path.read_bytes())
    name_len = int.from_bytes(raw[26:28], "little")
    extra_len = int.from_bytes(raw[28:30], "little")
    at = 30 + name_len + extra_len + 200
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["crc", "empty"])
def test_npz_files_with_a_bad_crc_or_no_bytes_are_one_line(ext, run_main, tmp_path, monkeypatch, damage):
    from sklearn.datasets import load_digits

    d = load_digits()
    predictions = tmp_path / "predictions.npz"
    np.savez(predictions, labels=d.target[:400], member=np.arange(400) < 200, probs=np.full((400, 10), 0.1))
    members = tmp_path / "members.npz"
    np.savez(members, members=np.arange(0, 600, 3))
    for path in (predictions, members):
        _bad_crc(path) if damage == "crc" else path.write_bytes(b"")
    assert_one_line_error(*run_main("audit-scores", str(predictions)), "predictions.npz", "damaged" if damage == "crc" else "empty")
    monkeypatch.chdir(ext)
    args = [a if a != "members.json" else str(members) for a in EXT]
    assert_one_line_error(*run_main("attack", *args, "--out", str(tmp_path / "a")), "members.npz")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("field, value", [("epoch", "three"), ("step", -1), ("sha256", ["x"]), ("config", 5)])
def test_a_checkpoint_meta_field_of_the_wrong_type_is_one_line_and_changes_nothing(run_main, tmp_path, field, value):
    code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "40", "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    meta = tmp_path / "run" / "checkpoint" / "meta.json"
    m = json.loads(meta.read_text())
    m[field] = value
    meta.write_text(json.dumps(m))
    before = _tree(tmp_path / "run")
    for args in (["evaluate", str(tmp_path / "run")], ["train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "40",
                                                     "--out", str(tmp_path / "run"), "--resume", "--quiet"]):
        assert_one_line_error(*run_main(*args), "meta.json", field)
    assert _tree(tmp_path / "run") == before


# --- 3. late refusals that left output ----------------------------------------------------------------------------

def test_refusals_that_came_late_now_come_before_anything_is_written(ext, run_main, tmp_path, monkeypatch):
    code, _, err = run_main("train", "--model", "digits-cnn", "--epochs", "1", "--train-size", "40", "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    before = _tree(tmp_path / "run")
    # a certified-only attack on a model the bounds cannot handle
    assert_one_line_error(*run_main("attack", str(tmp_path / "run"), "--attacks", "verified-margin", "--eps", "0.1"), "MaxPool2d")
    # a missing device
    assert_one_line_error(*run_main("attack", str(tmp_path / "run"), "--device", "cuda:0"), "no CUDA GPU")
    assert_one_line_error(*run_main("train", "--out", str(tmp_path / "gpu"), "--device", "cuda"), "no CUDA GPU")
    assert _tree(tmp_path / "run") == before and not (tmp_path / "gpu").exists()
    # keep masks that leave an example without OUT models
    monkeypatch.chdir(ext)
    keep = np.zeros((4, 200 + 300), bool)
    keep[:2] = True
    keep[:, 0] = True  # example 0 is IN for all four
    np.savez(tmp_path / "keep.npz", keep=keep)
    refs = sum((["--reference-weights", "model.safetensors"] for _ in range(4)), [])
    assert_one_line_error(*run_main("attack", *EXT, *refs, "--reference-keep", str(tmp_path / "keep.npz"), "--attacks", "lira",
                                    "--out", str(tmp_path / "a")), "lira needs at least 2 IN and 2 OUT", "example 0")
    assert not (tmp_path / "a").exists()


def test_a_mistake_in_an_external_target_of_a_spec_is_refused_before_the_study_starts(ext, run_main, tmp_path, monkeypatch):
    monkeypatch.chdir(ext)
    (tmp_path / "members.json").write_text(json.dumps([0, 1, 5000]))  # an index beyond the train split
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(f"""
        name: mixed
        defaults: {{dataset: digits, model: digits-mlp, train_size: 40, epochs: 1}}
        targets:
          - {{name: ours, tables: [I], train: {{method: natural}}}}
          - name: theirs
            external: {{arch: digits-mlp, weights: model.safetensors, dataset: npz, data_dir: data, members: {tmp_path / 'members.json'}}}
        audit: {{attacks: [confidence], bootstrap: 0}}
    """))
    assert_one_line_error(*run_main("run", str(spec), "--out", str(tmp_path / "study")), "target theirs", "5000", "out of range")
    assert not (tmp_path / "study").exists()


def test_a_damaged_checkpoint_found_on_resume_changes_nothing(run_main, tmp_path):
    code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "40", "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    weights = tmp_path / "run" / "checkpoint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    before = _tree(tmp_path / "run")
    assert_one_line_error(*run_main("train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "40", "--out", str(tmp_path / "run"),
                                    "--resume", "--quiet"), "damaged or truncated")
    assert _tree(tmp_path / "run") == before


# --- 4. silent acceptances now warn (or are refused) -------------------------------------------------------------

def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("robustmia: warning: ")]


def test_settings_the_method_ignores_and_repeated_settings_are_warned_about(run_main, tmp_path):
    code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "40", "--set", "dp_noise=2",
                            "--set", "trades_beta=3", "--set", "trades_beta=4", "--attack-steps", "5", "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0, err
    said = _warnings(err)
    assert any("--set trades_beta is given twice" in w for w in said), said
    assert any("natural does not use attack_steps, dp_noise, trades_beta" in w for w in said), said
    code, _, err = run_main("train", "--method", "pgd", "--eps", "0.1", "--model", "digits-mlp", "--epochs", "1", "--train-size", "40",
                            "--attack-steps", "3", "--out", str(tmp_path / "p"), "--quiet")
    assert code == 0 and not _warnings(err), err  # settings that act are not warned about


def test_an_eval_size_beyond_the_members_is_warned_about_and_unknown_arch_args_are_refused(ext, run_main, tmp_path, monkeypatch):
    monkeypatch.chdir(ext)
    code, _, err = run_main("attack", *EXT, "--attacks", "confidence", "--eval-size", "5000", "--bootstrap", "0", "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert any("--eval-size 5000 is more than" in w and "200 members" in w for w in _warnings(err)), err
    assert_one_line_error(*run_main("attack", *EXT, "--arch-args", '{"width": 3}', "--out", str(tmp_path / "b")),
                          "unknown argument 'width'", "digits-mlp")


# --- 5. what a kill or a crash leaves behind --------------------------------------------------------------------

def test_a_run_folder_half_made_by_a_crash_does_not_block_the_corrected_command(run_main, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"model": "digits-mlp", "lr": 100.0}))  # a crash before the first checkpoint
    (out / "log.jsonl").write_text("")
    for resume in ([], ["--resume"]):
        code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "40", "--lr", "0.05", "--out", str(out),
                                "--quiet", *resume)
        assert code == 0, err
        assert json.loads((out / "config.json").read_text())["lr"] == 0.05
        if not resume:  # half-made again: a config, no checkpoint
            import shutil

            shutil.rmtree(out / "checkpoint")


def test_a_kill_inside_a_stacked_group_resumes_the_group_as_it_was_trained(tmp_path, monkeypatch):
    """Killed while the group's checkpoint is being swapped in (some models a step ahead), or while the new
    checkpoints are being written, the group resumes as one stack and ends with the uninterrupted weights."""
    import torch

    from robustmia.data.datasets import load_dataset
    from robustmia.training import checkpoint as ckpt
    from robustmia.training.config import TrainConfig
    from robustmia.training.stacked import train_stacked

    train_set, _ = load_dataset("digits")
    configs = [TrainConfig(model="digits-mlp", method="natural", epochs=2, batch_size=32, seed=s, eval_every=0) for s in range(4)]
    members = [train_set.subset(range(20 * k, 20 * k + 60)) for k in range(4)]
    whole = [tmp_path / "whole" / str(k) for k in range(4)]
    train_stacked(configs, whole, members, device="cpu")
    expected = [ckpt.load_checkpoint(ckpt.checkpoint_dir(w), with_optimizer=False)[0] for w in whole]

    for where in ("swap", "write"):
        outs = [tmp_path / where / str(k) for k in range(4)]
        real = {"swap": ckpt.swap_in, "write": ckpt.write_new}[where]
        calls = {"n": 0}

        def dies(*args, real=real, calls=calls):
            calls["n"] += 1
            if calls["n"] == 4 + 2:  # the second epoch's group checkpoint, half done
                raise KeyboardInterrupt
            return real(*args)

        monkeypatch.setattr(ckpt, {"swap": "swap_in", "write": "write_new"}[where], dies)
        with pytest.raises(KeyboardInterrupt):
            train_stacked(configs, outs, members, device="cpu")
        monkeypatch.setattr(ckpt, {"swap": "swap_in", "write": "write_new"}[where], real)
        epochs = {ckpt.read_meta(ckpt.checkpoint_dir(o))["epoch"] for o in outs}
        assert len(epochs) == (2 if where == "swap" else 1)  # swapping: some models a step ahead until recovered
        train_stacked(configs, outs, members, device="cpu")
        for o, want in zip(outs, expected):
            got = ckpt.load_checkpoint(ckpt.checkpoint_dir(o), with_optimizer=False)[0]
            assert all(torch.equal(got[k], want[k]) for k in want), (where, o)


# --- 6. messages and defaults that misled ----------------------------------------------------------------------------

def test_supplied_reference_models_set_their_own_count_even_an_odd_one(ext, run_main, tmp_path, monkeypatch):
    monkeypatch.chdir(ext)
    keep = np.random.default_rng(0).random((3, 500)) < 0.5
    np.savez(tmp_path / "keep.npz", keep=keep)
    refs = sum((["--reference-weights", "model.safetensors"] for _ in range(3)), [])
    code, out, err = run_main("attack", *EXT, *refs, "--reference-keep", str(tmp_path / "keep.npz"), "--attacks", "confidence,rmia",
                              "--threshold", "both", "--bootstrap", "0", "--json", "--eval-size", "100", "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert {r["n_references"] for r in json.loads(out) if r["attack"] == "rmia"} == {3}


def test_messages_say_what_the_command_can_do(run_main, tmp_path):
    from robustmia.locks import folder_lock

    code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "40", "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    folder = tmp_path / "run" / "audit" / "n40-seed0"
    lock = subprocess.Popen([sys.executable, "-c", f"from robustmia.locks import folder_lock\nimport time\n"
                             f"with folder_lock({str(folder)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        assert lock.stdout.readline().strip() == "held"
        code, out, err = run_main("attack", str(tmp_path / "run"), "--attacks", "confidence")
        assert_one_line_error(code, out, err, "in use by another robustmia process", "run the same command again")
        assert "--resume" not in err
    finally:
        lock.kill()
    assert folder_lock  # (imported for the lock's own module path)
    assert_one_line_error(*run_main("evaluate", str(tmp_path / "run"), "--autoattack"), "AutoAttack needs an epsilon", "--eps")


# --- 7. the audit workflow on a model trained elsewhere -----------------------------------------------------------------

def test_repeated_audits_accumulate_and_report_finds_them(ext, run_main, tmp_path, monkeypatch):
    monkeypatch.chdir(ext)
    out = tmp_path / "a"
    for attacks in ("confidence", "loss,entropy", "confidence"):
        code, _, err = run_main("attack", *EXT, "--attacks", attacks, "--bootstrap", "0", "--out", str(out), "--quiet")
        assert code == 0, err
    saved = json.loads(next(out.glob("audit/*/attacks.json")).read_text())
    assert sorted(r["attack"] for r in saved["attacks"]) == ["confidence", "entropy", "loss"]
    code, out_text, err = run_main("report", str(out))
    assert code == 0, err
    html = (out / "report" / "report.html").read_text()
    assert "entropy" in html and "no naturally trained target" not in html
    assert "shadow' rows" not in html and "Verified accuracies" not in html and "Adversarial accuracies" not in html


def test_changed_reference_settings_train_new_references_beside_the_old(ext, run_main, tmp_path, monkeypatch):
    monkeypatch.chdir(ext)
    out = tmp_path / "a"
    from robustmia import api

    for epochs in (1, 2):
        options = dict(arch="digits-mlp", weights="model.safetensors", data_dir="data", reference_recipe="cpu-digits-natural",
                       reference_train={"epochs": epochs, "model": "digits-mlp"}, attacks="lira", references=4, eval_size=30,
                       bootstrap=0, out=out)
        api.audit(None, "npz", "members.json", device="cpu", **options)
    folders = sorted(p.name for p in next(out.glob("audit/*")).glob("references-4*"))
    assert len(folders) == 2, folders


def test_data_dir_takes_the_dataset_folder_or_the_folder_of_dataset_folders(tmp_path, run_main):
    from tests.generated import write_cifar10

    write_cifar10(tmp_path / "data" / "cifar10", 40, 40)
    for data_dir in (tmp_path / "data", tmp_path / "data" / "cifar10", tmp_path / "data" / "cifar10" / "cifar-10-batches-py"):
        out = tmp_path / f"run-{len(data_dir.parts)}"
        code, _, err = run_main("train", "--dataset", "cifar10", "--data-dir", str(data_dir), "--model", "small-cnn", "--epochs", "1",
                                "--train-size", "20", "--out", str(out), "--quiet")
        assert code == 0, (data_dir, err)
    spec = tmp_path / "spec.yaml"
    spec.write_text("targets: [{name: t, tables: [I], train: {dataset: cifar10, model: small-cnn, train_size: 20, epochs: 1}}]\n"
                    "audit: {attacks: [confidence], bootstrap: 0}\n")
    for data_dir in (tmp_path / "data", tmp_path / "data" / "cifar10"):
        code, _, err = run_main("run", str(spec), "--data-dir", str(data_dir), "--out", str(tmp_path / f"study-{len(data_dir.parts)}"),
                                "--quiet")
        assert code == 0, (data_dir, err)


def test_no_user_facing_text_or_file_name_calls_the_paper_the_seed():
    import re

    pattern = re.compile(r"\bthe seed('s)?\b|beyond[- ]the[- ]seed", re.I)
    allowed = re.compile(r"the seed (of|for|that|is|=)", re.I)
    for path in [*(REPO / "src").rglob("*"), REPO / "README.md", *(REPO / "docs").rglob("*")]:
        assert "seed" not in path.name.replace("seeding", "") or path.suffix == ".pyc", path
        if path.is_file() and path.suffix in (".py", ".md", ".yaml", ".html"):
            for line in path.read_text(errors="replace").splitlines():
                if pattern.search(line) and not allowed.search(line):
                    raise AssertionError(f"{path}: {line.strip()}")


# --- 8. progress that a log can read ---------------------------------------------------------------------------------------

def test_progress_lines_name_what_runs_and_how_far_it_is_and_never_wrap(tmp_path):
    r = _robustmia(tmp_path, "train", "--model", "digits-mlp", "--epochs", "2", "--train-size", "40", "--out", "a-rather-long-run-folder-name")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "epoch" in line]
    assert lines and all(line.startswith("a-rather-long-run-folder-name: epoch ") and "/2" in line for line in lines), r.stderr
    assert all(len(line) > 80 for line in lines)  # one line each, longer than a terminal's 80 columns
    assert any("train a-rather-long-run-folder-name (digits-mlp, natural): started" in line for line in r.stderr.splitlines())
    r = _robustmia(tmp_path, "attack", "a-rather-long-run-folder-name", "--attacks", "lira", "--references", "4", "--bootstrap", "0")
    assert r.returncode == 0, r.stderr
    assert "reference models (natural): started (0/4)" in r.stderr and "reference models (natural): done (4/4" in r.stderr


def test_the_study_log_lists_the_targets_and_records_each_one_finishing(study):
    log = (study / "study.log").read_text()
    assert "1 targets (natural)" in log and "trained natural (1 of 1 to train" in log and "evaluated natural" in log
    assert "audited natural" in log
