"""The GPU speed switches (bf16 autocast, channels_last, torch.compile), checked on the CPU:
they train, they keep what they promise to keep, and they do not change a run's identity
unless they change its arithmetic."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from robustmia.data.datasets import DATASETS
from robustmia.models import build_model
from robustmia.robust.pgd import pgd
from robustmia.training.checkpoint import checkpoint_dir, load_checkpoint
from robustmia.training.config import TrainConfig
from robustmia.training.loop import autocast, train
from robustmia.experiments.runner import run_hash
from tests.conftest import REPO

BASE = dict(model="digits-cnn", method="natural", epochs=2, train_size=200, batch_size=50)


def _weights(folder):
    return load_checkpoint(checkpoint_dir(folder), with_optimizer=False)[0]


def _diff(a, b) -> float:
    return max((a[n] - b[n]).abs().max().item() for n in a)


def test_identity_counts_bf16_but_not_layout_or_compilation():
    plain = TrainConfig(**BASE)
    assert run_hash(plain.model_copy(update={"channels_last": True, "compile": True})) == run_hash(plain)
    assert run_hash(plain.model_copy(update={"amp": "bf16"})) != run_hash(plain)
    assert "amp" not in plain.identity()  # runs made before the switch existed keep their hash


def test_channels_last_trains_the_same_model(tmp_path):
    train(TrainConfig(**BASE), tmp_path / "plain")
    train(TrainConfig(**BASE, channels_last=True), tmp_path / "cl")
    assert _diff(_weights(tmp_path / "plain"), _weights(tmp_path / "cl")) < 1e-4


def test_bf16_training_keeps_the_attack_in_float32_and_inside_the_ball(tmp_path):
    config = TrainConfig(**{**BASE, "method": "pgd", "eps": 0.1, "epochs": 6}, amp="bf16")
    ours = train(config, tmp_path / "bf16")
    full = train(config.model_copy(update={"amp": "off"}), tmp_path / "fp32")
    assert ours["train_loss"] == pytest.approx(full["train_loss"], rel=0.05)  # it learns as float32 does
    assert abs(ours["test_accuracy"] - full["test_accuracy"]) < 0.1
    model = build_model("digits-cnn", DATASETS["digits"])
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    with autocast(config, torch.device("cpu")):
        assert model(x).dtype == torch.bfloat16  # the switch is on
        x_adv = pgd(model, x, y, eps=0.1, alpha=0.025, steps=3, generator=torch.Generator().manual_seed(0))
    assert x_adv.dtype == torch.float32
    assert (x_adv - x).abs().max() <= 0.1 + 1e-7 and x_adv.min() >= 0 and x_adv.max() <= 1


def test_certified_bounds_stay_in_float32_under_bf16(tmp_path):
    record = train(TrainConfig(model="wong-cnn", method="crown_ibp", eps=0.05, epochs=1, train_size=100, batch_size=50, amp="bf16"),
                   tmp_path / "crown")
    assert record["train_loss"] == record["train_loss"]  # finite, not NaN


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path):
    config = dict(model="digits-mlp", method="natural", epochs=1, train_size=200, batch_size=50)
    train(TrainConfig(**config), tmp_path / "eager")
    # in a subprocess: compilation state stays out of the test process
    code = ("import sys; from robustmia.training.config import TrainConfig; from robustmia.training.loop import train; "
            f"train(TrainConfig(**{config!r}, compile=True), sys.argv[1])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "compiled")], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _diff(_weights(tmp_path / "eager"), _weights(tmp_path / "compiled")) < 1e-5
