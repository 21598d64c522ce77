"""``torchrun --nproc-per-node 2 -m robustmia train`` (gloo on the CPU) equals one process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from robustmia.training.checkpoint import checkpoint_dir, load_checkpoint
from tests.conftest import cli

# 301 members at batch 64: the last batch (45) splits unevenly, 23 + 22
ARGS = ["--dataset", "digits", "--train-size", "301", "--batch-size", "64", "--epochs", "2", "--device", "cpu", "--quiet", "--json"]
METHODS = {
    "natural": ["--model", "digits-cnn", "--method", "natural"],
    "pgd": ["--model", "digits-cnn", "--method", "pgd", "--eps", "0.1", "--attack-steps", "3"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GLOO_TEARDOWN = "terminate called without an active exception"


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """Run ``robustmia ARGS`` under torchrun. Once in many runs on a loaded 2-core machine (1 in about 30 here), a
    rank aborts in gloo's C++ teardown with GLOO_TEARDOWN and no Python error (the upstream problem of gloo worker
    threads at process exit, pytorch/pytorch#179291); that one signature is retried once, into a fresh folder."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for attempt in range(2):
        r = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-port", str(_free_port()),
             "-m", "robustmia", *args],
            capture_output=True, text=True, env=env,
        )
        if r.returncode == 0 or GLOO_TEARDOWN not in r.stderr or "robustmia" in r.stderr.split(GLOO_TEARDOWN)[0] or attempt:
            return r
        if "--out" in args:
            shutil.rmtree(args[args.index("--out") + 1], ignore_errors=True)
    return r


@pytest.mark.parametrize("method", list(METHODS))
def test_two_processes_train_the_weights_of_one(tmp_path, method):
    single = cli("train", "--out", str(tmp_path / "single"), *ARGS, *METHODS[method])
    assert single.returncode == 0, single.stderr
    ddp = torchrun("train", "--out", str(tmp_path / "ddp"), *ARGS, *METHODS[method])
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    # rank 0 alone reports and writes
    assert json.loads(ddp.stdout)["epoch"] == 2
    assert len((tmp_path / "ddp" / "log.jsonl").read_text().splitlines()) == 2
    a = load_checkpoint(checkpoint_dir(tmp_path / "single"), with_optimizer=False)[0]
    b = load_checkpoint(checkpoint_dir(tmp_path / "ddp"), with_optimizer=False)[0]
    assert max((a[n] - b[n]).abs().max().item() for n in a) < 1e-4
    la = json.loads(single.stdout)
    lb = json.loads(ddp.stdout)
    assert lb["train_loss"] == pytest.approx(la["train_loss"], abs=1e-4)
    assert lb["train_accuracy"] == la["train_accuracy"]


def test_a_batch_too_small_to_split_is_refused_before_training(tmp_path):
    # 301 members at batch 100 leave a last batch of 1, which two processes cannot share
    result = torchrun("train", "--out", str(tmp_path / "run"), *ARGS[:4], "--batch-size", "100", "--epochs", "1", "--device", "cpu", "--quiet")
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("robustmia: error: ")]
    assert len(ours) == 1 and "cannot be split over 2 processes" in ours[0]
    # torchrun's launcher reports the failed processes with its own traceback; none comes from robustmia
    frames = [line for line in result.stderr.splitlines() if line.strip().startswith("File ")]
    assert not [f for f in frames if "/robustmia/" in f.split("site-packages")[-1] and "torch" not in f], frames
    assert not (tmp_path / "run" / "checkpoint").exists()
