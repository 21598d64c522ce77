import numpy as np
import torch

from robustmia.data.datasets import DATASETS, ImageSet
from robustmia.models import build_model
from robustmia.privacy.signals import model_signals, signals_from_logits
from robustmia.robust.evaluate import Perturbation


def test_signals_match_the_textbook_formulas():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (200, 10))
    y = rng.integers(0, 10, 200)
    s = signals_from_logits(z, y)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    py = p[np.arange(200), y]
    assert np.allclose(s["confidence"], py)
    assert np.allclose(s["loss"], -np.log(py))
    assert np.allclose(s["entropy"], -(p * np.log(p)).sum(1))
    others = np.ones_like(p, bool)
    others[np.arange(200), y] = False
    mentr = -(1 - py) * np.log(py) - (np.where(others, p * np.log(1 - p), 0)).sum(1)
    assert np.allclose(s["mentropy"], mentr)
    assert np.allclose(s["lira"], np.log(py) - np.log(1 - py))


def test_signals_stay_finite_and_exact_for_extreme_logits():
    z = np.array([[60.0, 0.0, 0.0], [0.0, 60.0, 0.0], [-500.0, 500.0, 0.0]])
    y = np.array([0, 0, 1])
    s = signals_from_logits(z, y)
    for v in s.values():
        assert np.isfinite(v).all()
    # confident and right: lira = 60 - log 2 although F_y rounds to 1 in float64
    assert np.isclose(s["lira"][0], 60 - np.log(2), rtol=0, atol=1e-9)
    assert np.isclose(s["lira"][1], -60 + np.log1p(np.exp(-60)), atol=1e-9)
    assert s["lira"][2] == 500.0
    assert s["mentropy"][0] > 0 and s["mentropy"][0] < 1e-20
    # wrong and confident: -(1-F_y) log F_y ~ 60, and -F_1 log(1 - F_1) ~ 60 - log 2
    assert np.isclose(s["mentropy"][1], 120 - np.log(2), rtol=1e-9)


def test_adversarial_signals_use_eval_mode_and_leave_batchnorm_alone():
    torch.manual_seed(0)
    model = build_model("wrn-10-1", DATASETS["cifar10"])
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = ImageSet(torch.rand(12, 3, 32, 32), torch.randint(0, 10, (12,)))
    perturbation = Perturbation(eps=8 / 255, steps=3, step_size=2 / 255, random_start=False)
    s = model_signals(model, data, perturbation=perturbation, batch_size=5)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert (s["adv_loss"] >= s["loss"] - 1e-6).all() and np.allclose(s["loss_increase"], s["adv_loss"] - s["loss"])
    # eval mode for real: the clean signals equal those of the eval-mode model
    with torch.no_grad():
        ref = signals_from_logits(model.eval()(data.images), data.labels)
    assert np.allclose(s["loss"], ref["loss"], atol=1e-6)
