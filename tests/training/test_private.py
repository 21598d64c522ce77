"""DP-SGD through opacus and early stopping, each against an independent computation: the
accountant's epsilon against opacus' own accountant stepped as a user would step it, per-sample
gradients against torch.func, the private update against clipping by hand, DP-PGD points against
the eps-ball, the early-stopped epoch against the log."""

import json

import pytest
import torch
from torch import nn

pytest.importorskip("opacus", reason="DP-SGD needs the dp extra: pip install 'robustmia[dp]'")

from robustmia.errors import UserError  # noqa: E402
from robustmia.io import read_jsonl  # noqa: E402
from robustmia.training.config import TrainConfig  # noqa: E402
from robustmia.training.early_stop import BEST_FILE, STATE_FILE, best_epoch  # noqa: E402
from robustmia.training.loop import train  # noqa: E402
from robustmia.training.private import make_private, private_model  # noqa: E402

SMALL = {"dataset": "digits", "model": "digits-mlp", "train_size": 100, "batch_size": 20, "lr": 0.3, "momentum": 0.0,
         "weight_decay": 0.0, "eps": 0.1}


def test_dpsgd_epsilon_equals_opacus_accountant_for_the_same_noise_rate_steps_and_delta(tmp_path):
    from opacus.accountants import RDPAccountant

    config = TrainConfig(method="dpsgd", epochs=3, dp_noise=1.3, dp_delta=1e-4, **SMALL)
    record = train(config, tmp_path / "run")
    steps = 3 * 5  # ceil(100 / 20) Poisson steps per epoch
    assert record["step"] == steps
    accountant = RDPAccountant()
    for _ in range(steps):
        accountant.step(noise_multiplier=1.3, sample_rate=20 / 100)
    assert record["dp_epsilon"] == pytest.approx(accountant.get_epsilon(delta=1e-4), rel=1e-9)
    assert record["dp_delta"] == 1e-4
    epsilons = [r["dp_epsilon"] for r in read_jsonl(tmp_path / "run" / "log.jsonl", "")]
    assert epsilons == sorted(epsilons) and epsilons[0] > 0  # privacy spent grows every epoch
    # its audit measures each attack's one-run epsilon estimate at the accountant's delta, unless told otherwise
    from robustmia import audit

    assert audit(tmp_path / "run", attacks="confidence", bootstrap=0, eval_size=50).attacks[0].metrics.epsilon_estimate_one_run["delta"] == 1e-4
    told = audit(tmp_path / "run", attacks="confidence", bootstrap=0, eval_size=50, delta=1e-6)
    assert told.attacks[0].metrics.epsilon_estimate_one_run["delta"] == 1e-6


class _Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)))


def _config(**kw) -> TrainConfig:
    return TrainConfig(method="dpsgd", **{**SMALL, **kw})


def test_per_sample_gradients_equal_torch_func_before_clipping():
    import copy

    torch.manual_seed(0)
    model = _Conv()
    reference = copy.deepcopy(model)  # the same weights, without opacus' hooks
    view, private = make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), _config(), 100)
    x, y = torch.rand(7, 1, 8, 8), torch.randint(0, 10, (7,))
    nn.functional.cross_entropy(view(x), y, reduction="none").mean().backward()
    params = {k: v.detach() for k, v in reference.named_parameters()}

    def loss(p, xi, yi):
        return nn.functional.cross_entropy(torch.func.functional_call(reference, p, (xi[None],)), yi[None])

    expected = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad_sample, expected[name], atol=1e-6), name


def test_the_private_update_is_the_mean_of_clipped_per_sample_gradients_plus_noise():
    torch.manual_seed(0)
    model = _Conv()
    clip = 0.05  # well below the per-example gradient norms, so that every one is clipped
    config = _config(dp_clip=clip, dp_noise=1e-6, batch_size=10)
    view, private = make_private(model, torch.optim.SGD(model.parameters(), lr=1.0), config, 100)
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    per = [torch.autograd.grad(nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), list(model.parameters())) for i in range(8)]
    norms = torch.stack([torch.sqrt(sum(g.pow(2).sum() for g in gs)) for gs in per])
    assert (norms > clip).all()
    before = [p.detach().clone() for p in model.parameters()]
    private.zero_grad()
    nn.functional.cross_entropy(view(x), y, reduction="none").mean().backward()
    private.step()
    for k, (p, p0) in enumerate(zip(model.parameters(), before)):
        clipped = sum(gs[k] * min(1.0, clip / float(n)) for gs, n in zip(per, norms)) / 10  # divided by the expected batch
        assert torch.allclose(p0 - p.detach(), clipped, atol=1e-6)


def test_batchnorm_is_refused_by_name_or_replaced_by_groupnorm():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    with pytest.raises(UserError, match=r"dpsgd cannot train model digits-mlp: .*BatchNorm.*dp_batchnorm: groupnorm"):
        private_model(model, _config())
    fixed = private_model(model, _config(dp_batchnorm="groupnorm"))
    assert any(isinstance(m, nn.GroupNorm) for m in fixed.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fixed.modules())


def test_dp_pgd_trains_on_points_inside_the_eps_ball(tmp_path, monkeypatch):
    import robustmia.training.objectives as objectives

    seen = []
    real = objectives.pgd

    def recording(model, x, y, **kw):
        x_adv = real(model, x, y, **kw)
        seen.append((x.clone(), x_adv.clone(), kw["eps"], type(model).__name__))
        return x_adv

    monkeypatch.setattr(objectives, "pgd", recording)
    record = train(TrainConfig(method="dp_pgd", epochs=1, step_size=0.03, **SMALL), tmp_path / "run")
    assert len(seen) == 5 and record["dp_epsilon"] > 0
    for x, x_adv, eps, attacked in seen:
        assert eps == 0.1 and attacked != "GradSampleModule"  # the attack runs on the plain network
        assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
        assert (x_adv != x).any()


def test_early_stopping_picks_the_epoch_of_best_held_out_pgd_accuracy():
    log = [{"epoch": 1, "holdout_adv_accuracy": 0.40}, {"epoch": 2, "holdout_adv_accuracy": 0.55},
           {"epoch": 3, "holdout_adv_accuracy": 0.61}, {"epoch": 4, "holdout_adv_accuracy": 0.58},
           {"epoch": 5, "holdout_adv_accuracy": 0.61}, {"epoch": 6, "holdout_adv_accuracy": 0.50}, {"epoch": 7}]
    assert best_epoch(log) == (3, 0.61)  # the first of the tied best
    assert best_epoch([{"epoch": 1}]) is None


def test_an_early_stopped_run_ends_with_its_best_epoch(tmp_path):
    from safetensors.torch import load_file

    config = TrainConfig(method="pgd", epochs=5, early_stop=True, early_stop_holdout=60, early_stop_steps=3, **SMALL)
    train(config, tmp_path / "run")
    run = tmp_path / "run"
    log = read_jsonl(run / "log.jsonl", "")
    state = json.loads((run / STATE_FILE).read_text())
    assert (state["epoch"], state["holdout_adv_accuracy"]) == best_epoch(log) and state["final"] and state["holdout"] == 60
    meta = json.loads((run / "checkpoint" / "meta.json").read_text())
    assert meta["early_stop_epoch"] == state["epoch"] and meta["epoch"] == 5
    final, best = load_file(str(run / "checkpoint" / "model.safetensors")), load_file(str(run / BEST_FILE))
    assert all(torch.equal(final[k], best[k]) for k in best)
    assert config.identity()["early_stop"] is True and "dp_noise" not in config.identity()


def test_early_stopping_holds_out_training_split_images_outside_the_members(tmp_path):
    import numpy as np

    from robustmia.data.datasets import load_dataset
    from robustmia.training.early_stop import EarlyStopping

    train_set, _ = load_dataset("digits")
    members = train_set.subset(np.arange(0, 400, 2))
    stop = EarlyStopping(TrainConfig(method="pgd", early_stop=True, early_stop_holdout=150, **SMALL), tmp_path, train_set, members)
    held = set(stop.holdout.ids.tolist())
    assert len(held) == 150 and not held & set(members.ids.tolist()) and all(i < len(train_set) for i in held)
