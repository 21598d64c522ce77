"""End-to-end training through the real CLI: accuracy, schedule, determinism, resume after a kill."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import cli


def _weights(run: Path):
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def _log(run: Path):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_digits_cnn_overfits_and_generalises(tmp_path):
    run = tmp_path / "d"
    r = cli("train", "--dataset", "digits", "--model", "digits-cnn", "--epochs", "30", "--out", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    e = cli("evaluate", str(run), "--json")
    assert e.returncode == 0, e.stderr
    res = json.loads(e.stdout)
    assert {"train_accuracy", "test_accuracy", "train_loss", "test_loss"} <= res.keys()
    assert res["train_accuracy"] == 1.0
    assert res["test_accuracy"] >= 0.95
    assert res["train_loss"] < res["test_loss"]
    log = _log(run)
    assert [r["epoch"] for r in log] == list(range(1, 31))
    assert abs(log[-1]["test_accuracy"] - res["test_accuracy"]) < 1e-9
    meta = json.loads((run / "checkpoint" / "meta.json").read_text())
    assert meta["epoch"] == 30 and meta["config"]["seed"] == 0 and "torch" in meta["versions"]


def test_iterations_and_iteration_schedule(tmp_path, run_main):
    run = tmp_path / "it"
    code, out, err = run_main(
        "train", "--model", "digits-mlp", "--iterations", "20", "--lr", "0.05",
        "--lr-drops", "10:0.01,17:0.001", "--lr-unit", "iteration", "--out", str(run), "--quiet", "--json",
    )
    assert code == 0, err
    log = _log(run)  # 898 members / batch 128 = 8 steps an epoch: epochs end at steps 8, 16, 20
    assert [(r["step"], r["lr"]) for r in log] == [(8, 0.05), (16, 0.01), (20, 0.001)]
    assert json.loads(out)["step"] == 20


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, run_main):
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "2", "--seed", seed, "--out", str(tmp_path / name), "--quiet")
        assert code == 0, err
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)


def test_train_size_and_split_files(tmp_path, run_main):
    import numpy as np

    code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "100", "--out", str(tmp_path / "s"), "--quiet")
    assert code == 0, err
    with np.load(tmp_path / "s" / "split.npz", allow_pickle=False) as z:
        assert len(z["members"]) == 100 and len(z["nonmembers"]) == 100 and len(z["pool_train"]) == 798


@pytest.mark.parametrize("every", [1, 4])
def test_resume_after_sigkill_gives_bit_identical_weights(tmp_path, every):
    """With checkpoints every ``every`` epochs a kill loses at most that many epochs: the resume starts
    from the last checkpoint, drops the log lines after it, and ends with the same weights."""
    args = ["--model", "digits-cnn", "--epochs", "12", "--batch-size", "16", "--seed", "11", "--quiet",
            "--checkpoint-every", str(every), "--eval-every", str(every)]
    straight = tmp_path / "straight"
    assert cli("train", *args, "--out", str(straight)).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "robustmia", "train", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    meta, log = killed / "checkpoint" / "meta.json", killed / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text())["epoch"] >= 3 and len(log.read_text().splitlines()) > 4 + (every > 1):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    done = json.loads(meta.read_text())["epoch"]
    assert 3 <= done < 12 and done % every == 0
    with open(killed / "log.jsonl", "a") as f:  # as if it died writing a log line
        f.write('{"epoch": 99, "step": 1, "lr"')

    r = cli("train", *args, "--out", str(killed), "--resume")
    assert r.returncode == 0, r.stderr
    a, b = _weights(straight), _weights(killed)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert [x["epoch"] for x in _log(killed)] == list(range(1, 13))
    # the test split is scored every ``every`` epochs and after the last
    assert [x["epoch"] for x in _log(killed) if "test_accuracy" in x] == [e for e in range(1, 13) if e % every == 0 or e == 12]
    # resuming a finished run is a no-op that keeps the weights
    assert cli("train", "--out", str(killed), "--resume", "--quiet").returncode == 0
    assert all((_weights(killed)[k] == a[k]).all() for k in a)


def test_cifar10_subset_trains_from_the_cli(tmp_path, cifar_dir):
    run = tmp_path / "c"
    r = cli("train", "--dataset", "cifar10", "--data-dir", str(cifar_dir), "--model", "small-cnn", "--epochs", "1", "--train-size", "10000",
            "--out", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads(cli("evaluate", str(run), "--json").stdout)
    assert (res["n_train"], res["n_test"]) == (10_000, 10_000)
    assert res["test_accuracy"] > 0.2  # one epoch of a small CNN is well above chance (0.1)
    assert json.loads((run / "config.json").read_text())["augment"] == "auto"
