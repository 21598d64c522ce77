"""The attacks against torchattacks (an independent implementation) and their invariants."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustmia.data.datasets import DATASETS
from robustmia.models import build_model
from robustmia.robust.pgd import fgsm, pgd, pgd_l2

torchattacks = pytest.importorskip("torchattacks", reason="torchattacks is the test oracle: pip install --no-deps torchattacks==3.5.1")


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = build_model("small-cnn", DATASETS["cifar10"]).eval()
    x = torch.rand(32, 3, 32, 32)
    y = torch.randint(0, 10, (32,))
    return model, x, y


def test_linf_pgd_equals_torchattacks_without_random_start(setup):
    model, x, y = setup
    ours = pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=10, random_start=False)
    theirs = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, random_start=False)(x, y)
    assert (ours - theirs).abs().max() <= 1e-6


def test_l2_pgd_and_fgsm_equal_torchattacks(setup):
    model, x, y = setup
    ours = pgd_l2(model, x, y, eps=0.5, alpha=0.1, steps=10, random_start=False)
    theirs = torchattacks.PGDL2(model, eps=0.5, alpha=0.1, steps=10, random_start=False)(x, y)
    assert (ours - theirs).abs().max() <= 1e-5  # torchattacks adds 1e-10 to the gradient norm
    assert (fgsm(model, x, y, eps=4 / 255) - torchattacks.FGSM(model, eps=4 / 255)(x, y)).abs().max() <= 1e-6


@pytest.mark.parametrize("attack, norm", [(pgd, "linf"), (pgd_l2, "l2")])
def test_every_point_is_in_the_ball_and_the_box(setup, attack, norm):
    model, x, y = setup
    x = x.clone()
    x[:4] = 0.0  # corners of the box: clamping must still hold
    x[4:8] = 1.0
    eps = 8 / 255 if norm == "linf" else 0.5
    g = torch.Generator().manual_seed(1)
    x_adv = attack(model, x, y, eps=eps, alpha=eps / 2, steps=5, random_start=True, restarts=2, generator=g)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-6).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (size > 0).any()


def test_restarts_never_lower_the_loss(setup):
    model, x, y = setup
    one = pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=3, generator=torch.Generator().manual_seed(5))
    five = pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=3, restarts=5, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        l1 = F.cross_entropy(model(one), y, reduction="none")
        l5 = F.cross_entropy(model(five), y, reduction="none")
    assert (l5 >= l1 - 1e-6).all()
    assert (l5 > l1 + 1e-4).any()


def test_attack_raises_the_loss_and_eps_zero_is_identity(setup):
    model, x, y = setup
    x_adv = pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=5, random_start=False)
    with torch.no_grad():
        assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y)
    assert torch.equal(pgd(model, x, y, eps=0.0, alpha=0.1, steps=3), x)


def test_train_mode_attack_leaves_batchnorm_statistics_alone():
    torch.manual_seed(0)
    model = build_model("wrn-10-1", DATASETS["cifar10"])
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=3, mode="train", generator=torch.Generator().manual_seed(0))
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # and the train-mode attack really used batch statistics: it differs from the eval-mode one
    ev = pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=3, mode="eval", random_start=False)
    tr = pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=3, mode="train", random_start=False)
    assert not torch.equal(ev, tr)
    assert model.training


def test_bad_settings_raise():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y = torch.rand(1, 1, 2, 2), torch.zeros(1, dtype=torch.long)
    for bad in ({"eps": -0.1, "alpha": 0.1, "steps": 1}, {"eps": 0.1, "alpha": 0.0, "steps": 1}, {"eps": 0.1, "alpha": 0.1, "steps": 0}):
        with pytest.raises(ValueError):
            pgd(model, x, y, **bad)


def test_autoattack_without_either_implementation_says_how_to_install(monkeypatch):
    import builtins

    from robustmia.errors import UserError
    from robustmia.robust.autoattack import autoattack

    real_import = builtins.__import__

    def neither(name, *args, **kwargs):
        if name in ("torchattacks", "pyautoattack"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", neither)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(UserError, match=r"pip install pyautoattack.*pip install --no-deps torchattacks==3\.5\.1"):
        autoattack(model, torch.rand(1, 1, 2, 2), torch.zeros(1, dtype=torch.long), eps=0.1, num_classes=2)


def test_autoattack_of_its_authors_and_of_torchattacks_agree_within_one_example(tmp_path):
    """pyautoattack (Croce & Hein's code, which robustmia runs where installed) against torchattacks' re-implementation,
    the standard L-infinity ensemble on one fixed batch of 64 digits and a PGD-trained MLP: the same robust accuracy
    within one example."""
    pytest.importorskip("pyautoattack", reason="pip install pyautoattack (or the robustbench extra)")
    pytest.importorskip("torchattacks", reason="pip install --no-deps torchattacks==3.5.1")
    from robustmia.api import train
    from robustmia.robust.autoattack import autoattack, implementation
    from robustmia.training.config import TrainConfig
    from robustmia.training.run import Run

    train(TrainConfig(model="digits-mlp", epochs=15, method="pgd", eps=0.1, attack_steps=3), tmp_path / "r", device="cpu")
    run = Run.open(tmp_path / "r")
    model = run.load_model("cpu")
    _, test = run.data()
    x, y = test.images[:64], test.labels[:64]
    robust = {}
    for use in ("pyautoattack", "torchattacks"):
        x_adv = autoattack(model, x, y, eps=0.1, num_classes=10, seed=0, use=use)
        assert float((x_adv - x).abs().max()) <= 0.1 + 1e-6 and float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
        with torch.no_grad():
            robust[use] = int((model(x_adv).argmax(1) == y).sum())
    assert abs(robust["pyautoattack"] - robust["torchattacks"]) <= 1, robust
    assert 0 < robust["pyautoattack"] < 64  # the model is neither broken everywhere nor robust everywhere
    assert implementation().startswith("pyautoattack ")
