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
    # BatchNorm networks: each model keeps its own batch statistics, running ones too. Adversarial methods are checked one
    # step at a time below: their attacks' sign steps turn rounding differences of 1e-7 in a near-zero gradient into whole
    # steps of a pixel, so two trainings with attacks part after a few steps whatever the code
    "natural-batchnorm": dict(model="fast-cnn", model_args={"widths": [8, 16]}, method="natural", epochs=2, batch_size=64, lr=0.05),
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
    assert stackable(TrainConfig(model="wrn-16-1", dataset="cifar10"))  # BatchNorm: statistics per model
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


def test_a_pgd_step_of_stacked_batchnorm_networks_equals_one_model_steps():
    """One PGD training step of three stacked fast-cnns, one with a short batch (padded rows) and one sitting the step
    out, equals each model's own step: losses, logits, weight gradients and running statistics (the attack, in train
    mode, sees batch statistics and leaves the running ones alone; the training pass updates them). Then, in eval mode,
    each model's logits from its running statistics. (TRADES is not compared so: its attack starts where the KL
    gradient is about zero, so its first sign step is rounding noise.)"""
    import copy

    from robustmia.data.datasets import dataset_info
    from robustmia.models.fast import fit_to_members
    from robustmia.seeding import generator_draw
    from robustmia.training.methods import objective
    from robustmia.training.objectives import StepContext
    from robustmia.training.run import build_initial_model
    from robustmia.training.stacked import StackedModels, _pad, _stacked_draw

    config = TrainConfig(model="fast-cnn", model_args={"widths": [8, 16]}, method="pgd", eps=0.1, attack_steps=3, step_size=0.05)
    train_set, _ = load_dataset("digits")
    models = [build_initial_model(config.model_copy(update={"seed": s}), dataset_info("digits")) for s in (1, 2, 3)]
    for m in models:
        fit_to_members(m, train_set.images[:300])
    stack = StackedModels([copy.deepcopy(m) for m in models])
    counts, rows = [44, 0, 64], 64
    parts = [np.arange(100 * j, 100 * j + n) for j, n in enumerate(counts)]
    x = torch.cat([_pad(train_set.images[i], rows) for i in parts])
    y = torch.cat([_pad(train_set.labels[i], rows) for i in parts])
    step = objective("pgd")
    stack.train()
    stack.counts = torch.tensor(counts)
    draws = [generator_draw(torch.Generator().manual_seed(j)) if n else None for j, n in enumerate(counts)]
    out = step(stack, x, y, config, StepContext(None, draw=_stacked_draw(draws, counts, rows)))
    mask = (torch.arange(rows)[None, :] < torch.tensor(counts)[:, None]).flatten()
    (out.losses.view(3, rows) * mask.view(3, rows)).sum(1).div(torch.tensor(counts).clamp_min(1)).sum().backward()
    buffers, grads = stack.buffer_values, dict(zip(stack.names, (p.grad for p in stack.stacked)))
    for j, (model, n, i) in enumerate(zip(models, counts, parts)):
        before = {k: b.clone() for k, b in model.named_buffers()}
        if n:
            model.train()
            own = step(model, train_set.images[i], train_set.labels[i], config,
                       StepContext(None, draw=generator_draw(torch.Generator().manual_seed(j))))
            torch.testing.assert_close(out.losses[j * rows: j * rows + n], own.losses, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.logits[j * rows: j * rows + n], own.logits, atol=1e-5, rtol=1e-5)
            own.losses.mean().backward()
        for name, b in model.named_buffers():  # the training pass moved them (once), the attack's passes did not
            torch.testing.assert_close(buffers[name][j], b.to(buffers[name].dtype), atol=1e-5, rtol=1e-5)
            if "running_mean" in name:
                assert torch.equal(before[name], b) == (n == 0)
        for name, p in model.named_parameters():
            if p.requires_grad:
                torch.testing.assert_close(grads[name][j], p.grad if p.grad is not None else torch.zeros_like(p), atol=1e-5, rtol=1e-4)
    stack.eval()
    stack.counts = None
    with torch.no_grad():
        logits = stack(torch.cat([_pad(train_set.images[800:864], rows)] * 3))
        for j, model in enumerate(models):
            torch.testing.assert_close(logits[j * rows:(j + 1) * rows], model.eval()(train_set.images[800:864]), atol=1e-5, rtol=1e-5)
