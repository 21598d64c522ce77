"""fast-cnn and the fast-recipe settings: the whitening layer is fitted to the run's own members and to
nothing else; the network trains with every objective; TTA is part of the forward pass; label smoothing,
Nesterov momentum, the one-cycle and linear schedules and lookahead compute what their definitions say
(checked against torch's own SGD and cross-entropy and hand computations); runs made before these
settings existed keep their identity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustmia.api import train
from robustmia.data.catalog import dataset_info
from robustmia.models import build_model
from robustmia.models.fast import Whitening, fit_to_members
from robustmia.training.checkpoint import checkpoint_dir, load_checkpoint
from robustmia.training.config import TrainConfig
from tests.generated import write_cifar10

TINY = {"widths": [8, 16, 16]}


def _weights(run) -> dict[str, torch.Tensor]:
    return load_checkpoint(checkpoint_dir(run), with_optimizer=False)[0]


def test_the_whitening_layer_whitens_the_members_patches():
    torch.manual_seed(0)
    images = torch.rand(64, 3, 12, 12) * torch.tensor([1.0, 0.5, 0.2]).view(1, 3, 1, 1)  # channels of different scales
    layer = Whitening(3)
    layer.fit(images, eps=0.0)
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).double()
    white = patches @ layer.weight[:12].reshape(12, 12).T.double()
    covariance = white.T @ white / len(white)
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.float64), atol=1e-3)  # the first 12 filters whiten
    assert torch.equal(layer.weight[12:], -layer.weight[:12])  # and each has its negative


def test_whitening_depends_on_the_members_alone(tmp_path):
    """Every non-member image replaced: not one weight changes. Other members: the whitening changes."""
    for name, seed in (("a", 1), ("b", 2)):
        write_cifar10(tmp_path / name, 40, 40, seed=0)
        # the same training split, a test split of other random images
        test = tmp_path / name / "cifar-10-batches-py" / "test_batch"
        write_cifar10(tmp_path / f"{name}-test", 40, 40, seed=seed)
        test.write_bytes((tmp_path / f"{name}-test" / "cifar-10-batches-py" / "test_batch").read_bytes())
    runs = {}
    for name in ("a", "b"):
        config = TrainConfig(dataset="cifar10", data_dir=str(tmp_path / name), model="fast-cnn", model_args=TINY, train_size=20,
                             epochs=2, batch_size=8, augment="flip-translate")
        train(config, tmp_path / f"run-{name}", device="cpu")
        runs[name] = _weights(tmp_path / f"run-{name}")
    assert runs["a"].keys() == runs["b"].keys()
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"]), "a non-member image changed a weight"
    whitening = [k for k in runs["a"] if k.endswith("whiten.weight")]
    assert whitening and float(runs["a"][whitening[0]].abs().sum()) > 0
    other = TrainConfig(dataset="cifar10", data_dir=str(tmp_path / "a"), model="fast-cnn", model_args=TINY, train_size=20, epochs=1,
                        batch_size=8, seed=5)
    train(other, tmp_path / "run-other", device="cpu")
    assert not torch.equal(_weights(tmp_path / "run-other")[whitening[0]], runs["a"][whitening[0]])


def test_fit_to_members_sees_the_images_as_the_layer_does():
    info = dataset_info("cifar10")
    model = build_model("fast-cnn", info, TINY)
    images = torch.rand(30, 3, 32, 32)
    assert fit_to_members(model, images)
    direct = Whitening(3)
    direct.fit(model[0](images))  # after the model's normalisation
    assert torch.allclose(model[1].whiten.weight, direct.weight)
    assert not fit_to_members(build_model("small-cnn", info), images)


@pytest.mark.parametrize("method, extra", [("natural", {}), ("pgd", {"eps": 8 / 255, "attack_steps": 2}),
                                           ("trades", {"eps": 8 / 255, "attack_steps": 2}), ("fgsm_rs", {"eps": 8 / 255}),
                                           ("dpsgd", {"model_args": {**TINY, "whiten": False}, "dp_batchnorm": "groupnorm"})])
def test_fast_cnn_trains_with_every_objective(tmp_path, method, extra):
    write_cifar10(tmp_path / "data", 40, 40)
    config = TrainConfig(**{"dataset": "cifar10", "data_dir": str(tmp_path / "data"), "model": "fast-cnn", "model_args": TINY,
                            "train_size": 16, "epochs": 1, "batch_size": 8, "method": method, **extra})
    record = train(config, tmp_path / "run", device="cpu")
    assert np.isfinite(record["train_loss"])


def test_dp_refuses_the_whitening_layer(tmp_path, run_main):
    from tests.conftest import assert_one_line_error

    write_cifar10(tmp_path / "data", 40, 40)
    assert_one_line_error(*run_main("train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--model", "fast-cnn",
                                    "--method", "dpsgd", "--set", "dp_batchnorm=groupnorm", "--out", str(tmp_path / "r")),
                          "whitening", "whiten: false")
    assert not (tmp_path / "r").exists()


def test_tta_is_part_of_the_forward_pass_in_eval_mode():
    torch.manual_seed(0)
    model = build_model("fast-cnn", dataset_info("cifar10"), {**TINY, "tta": True})
    x = torch.rand(4, 3, 32, 32)
    fit_to_members(model, x)
    net = model[1]
    model.eval()
    with torch.no_grad():
        z = model(x)
        manual = (net._logits(model[0](x)) + net._logits(model[0](x).flip(3))) / 2
    assert torch.allclose(z, manual, atol=1e-6)
    model.train()
    assert not torch.allclose(model(x), z)  # training sees one view (and batch statistics)


def test_label_smoothing_is_torchs_and_a_training_attack_maximises_the_plain_loss():
    from robustmia.training.objectives import StepContext, loss, natural

    logits, y = torch.randn(6, 10), torch.randint(0, 10, (6,))
    config = TrainConfig(label_smoothing=0.2)
    assert torch.allclose(loss(logits, y, config), F.cross_entropy(logits, y, reduction="none", label_smoothing=0.2))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    x = torch.rand(6, 1, 8, 8)
    out = natural(model, x, y, config, StepContext(torch.Generator()))
    assert torch.allclose(out.losses, F.cross_entropy(model(x), y, reduction="none", label_smoothing=0.2))


def test_schedules_follow_their_definitions():
    from robustmia.training.schedule import learning_rate

    onecycle = TrainConfig(lr=0.4, lr_schedule="onecycle", lr_warmup=0.25, epochs=10)
    lrs = [learning_rate(onecycle, 0, s, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(0.4 / 25) and lrs[24] == pytest.approx(0.4)  # up over the first quarter
    assert lrs[25] == pytest.approx(0.4) and lrs[99] == pytest.approx(0.4 * (1 - 74 / 75))  # then linearly down to 0
    assert max(lrs) == pytest.approx(0.4) and all(a >= b for a, b in zip(lrs[24:], lrs[25:]))
    linear = TrainConfig(lr=0.1, lr_schedule="linear", epochs=10)
    assert learning_rate(linear, 0, 0, 10) == pytest.approx(0.1) and learning_rate(linear, 0, 5, 10) == pytest.approx(0.05)
    piecewise = TrainConfig(lr=0.1, lr_drops="2:0.01", epochs=10)
    assert [learning_rate(piecewise, e, 0, 10) for e in (0, 1, 2, 3)] == [0.1, 0.1, 0.01, 0.01]


def test_nesterov_and_lookahead_compute_what_they_define(tmp_path):
    """A run with Nesterov momentum and lookahead against the same steps done by hand with torch.optim.SGD."""
    from robustmia.data.datasets import load_dataset
    from robustmia.seeding import epoch_generator
    from robustmia.training.run import build_initial_model

    config = TrainConfig(model="digits-mlp", train_size=24, batch_size=8, epochs=1, lr=0.1, momentum=0.9, weight_decay=0.0,
                         nesterov=True, lookahead=2, lookahead_alpha=0.5, eval_every=0)
    train(config, tmp_path / "run", device="cpu")
    got = _weights(tmp_path / "run")

    model = build_initial_model(config, dataset_info("digits"))
    split = np.load(tmp_path / "run" / "split.npz")
    train_set, _ = load_dataset("digits")
    members = train_set.subset(split["members"])
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    slow = [p.detach().clone() for p in model.parameters()]
    order = torch.randperm(24, generator=epoch_generator(0, 0))
    for step, idx in enumerate(order.split(8), start=1):
        sgd.zero_grad()
        F.cross_entropy(model(members.images[idx]), members.labels[idx]).backward()
        sgd.step()
        if step % 2 == 0 or step == 3:  # every 2 steps, and the last
            with torch.no_grad():
                for s, p in zip(slow, model.parameters()):
                    s.add_(p - s, alpha=0.5)
                    p.copy_(s)
    want = model.state_dict()
    assert all(torch.allclose(got[k], want[k], atol=1e-6) for k in want)


def test_new_settings_enter_a_run_identity_only_where_they_act():
    from robustmia.experiments.runner import run_hash

    plain = TrainConfig(model="digits-cnn", epochs=3)
    assert set(plain.identity()) & {"label_smoothing", "nesterov", "lr_schedule", "lr_warmup", "lookahead", "lookahead_alpha",
                                      "model_args"} == set()
    assert run_hash(plain) == run_hash(TrainConfig(model="digits-cnn", epochs=3, lr_warmup=0.5, lookahead_alpha=0.7))
    assert run_hash(plain) != run_hash(TrainConfig(model="digits-cnn", epochs=3, label_smoothing=0.1))


def test_a_run_audited_with_references_of_another_recipe_is_warned_about_their_architecture(tmp_path, run_main):
    code, _, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--train-size", "60", "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    code, out, err = run_main("attack", str(tmp_path / "run"), "--attacks", "lira", "--references", "4", "--eval-size", "20",
                              "--reference-recipe", "cpu-digits-natural", "--reference-train", "epochs=1", "--bootstrap", "0", "--json")
    assert code == 0, err
    assert "architecture digits-cnn vs the target's digits-mlp" in err and "understate leakage" in err
    assert json.loads(out)[0]["n_references"] == 4
    folders = [p.name for p in (tmp_path / "run" / "audit").glob("*/references-4-*")]
    assert len(folders) == 1
