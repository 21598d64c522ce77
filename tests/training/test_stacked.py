"""K models trained stacked (torch.func) equal the same K trained one by one through the loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robustmia.data.datasets import load_dataset
from robustmia.training.checkpoint import checkpoint_dir, load_checkpoint
from robustmia.training.config import TrainConfig
from robustmia.training.loop import train
from robustmia.training.stacked import stackable, stacking_pays, train_stacked

K = 4


def _members(k: int) -> list:
    train_set, _ = load_dataset("digits")
    rng = np.random.default_rng(0)
    # subsets of different sizes (as the audit's keep masks give): the smaller ones sit out steps
    return [train_set.subset(np.flatnonzero(rng.random(len(train_set)) < 0.2 + 0.05 * j)) for j in range(k)]


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_checkpoint(checkpoint_dir(folder), with_optimizer=False)[0]


def _log(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


def _assert_same_runs(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    diff = max((wa[n] - wb[n]).abs().max().item() for n in wa)
    assert diff < 1e-5, diff
    la, lb = _log(a), _log(b)
    assert [r["step"] for r in la] == [r["step"] for r in lb]
    for ra, rb in zip(la, lb):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=1e-5)
        assert ra["test_accuracy"] == pytest.approx(rb["test_accuracy"], abs=2e-3)  # one test image may flip
        assert ra["lr"] == rb["lr"]


RECIPES = {
    "natural": dict(model="digits-mlp", method="natural", epochs=3, batch_size=64, lr_drops="2:0.01"),
    "pgd": dict(model="digits-mlp", method="pgd", eps=0.1, attack_steps=3, step_size=0.04, epochs=2, batch_size=64),
}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_stacked_training_gives_the_weights_of_one_by_one_training(tmp_path, recipe):
    configs = [TrainConfig(seed=100 + j, **RECIPES[recipe]) for j in range(K)]
    members = _members(K)
    assert len({len(m) for m in members}) == K
    for j in range(K):
        train(configs[j], tmp_path / f"one-{j}", members=members[j])
    records = train_stacked(configs, [tmp_path / f"stacked-{j}" for j in range(K)], members)
    assert [r["epoch"] for r in records] == [configs[0].epochs] * K
    for j in range(K):
        _assert_same_runs(tmp_path / f"one-{j}", tmp_path / f"stacked-{j}")
    # the models really differ from each other (own seeds, own subsets)
    w0, w1 = _weights(tmp_path / "stacked-0"), _weights(tmp_path / "stacked-1")
    assert max((w0[n] - w1[n]).abs().max().item() for n in w0) > 1e-2


def test_an_interrupted_stack_resumes_and_one_finished_model_is_left_alone(tmp_path):
    configs = [TrainConfig(seed=7 + j, **RECIPES["pgd"]) for j in range(3)]
    members = _members(3)
    for j in range(3):
        train(configs[j], tmp_path / f"one-{j}", members=members[j])
    folders = [tmp_path / f"stacked-{j}" for j in range(3)]
    train(configs[0], folders[0], members=members[0])  # finished before the stack starts
    before = (folders[0] / "checkpoint" / "meta.json").read_text()

    class Stop(Exception):
        pass

    def stop_after_first_epoch(event):
        if event["event"] == "record":
            raise Stop

    with pytest.raises(Stop):
        train_stacked(configs, folders, members, progress=stop_after_first_epoch)
    assert [len(_log(f)) for f in folders[:2]] == [2, 1]  # model 1 saved epoch 1, then the stop came
    assert not (folders[2] / "log.jsonl").exists() and (folders[2] / "config.json").exists()
    train_stacked(configs, folders, members)
    assert (folders[0] / "checkpoint" / "meta.json").read_text() == before
    for j in range(3):
        _assert_same_runs(tmp_path / f"one-{j}", folders[j])


def test_what_can_be_stacked():
    assert stackable(TrainConfig(model="digits-mlp", method="pgd", eps=0.1))
    assert stackable(TrainConfig(model="digits-cnn"))
    assert not stackable(TrainConfig(model="wrn-16-1", dataset="cifar10"))  # BatchNorm
    assert not stackable(TrainConfig(model="wong-cnn", method="crown_ibp", eps=0.1))  # walks one network's graph
    cpu = torch.device("cpu")
    assert stacking_pays(TrainConfig(model="digits-mlp"), cpu)
    assert not stacking_pays(TrainConfig(model="digits-cnn"), cpu)  # grouped convolutions are slower on CPUs
    assert stacking_pays(TrainConfig(model="digits-cnn"), torch.device("cuda"))


def test_stacks_refuse_mixed_recipes(tmp_path):
    members = _members(2)
    configs = [TrainConfig(model="digits-mlp"), TrainConfig(model="digits-mlp", lr=0.1)]
    with pytest.raises(ValueError, match="one recipe"):
        train_stacked(configs, [tmp_path / "a", tmp_path / "b"], members)
