"""A model's PGD points are made once per example: each example's random start comes from its
own seed (so its point does not depend on its batch), and a cache folder shares the points
between the evaluation and the membership signals."""

import numpy as np
import torch

from robustmia.data.datasets import ImageSet, load_dataset
from robustmia.models import build_model
from robustmia.data.catalog import dataset_info
from robustmia.robust.evaluate import Perturbation, perturbed_logits
from robustmia.robust.pgd import pgd


def _setup():
    torch.manual_seed(0)
    model = build_model("digits-mlp", dataset_info("digits")).eval()
    train, test = load_dataset("digits")
    return model, ImageSet.concat(train.subset(range(30)), test.subset(range(30)))


def test_an_examples_point_does_not_depend_on_its_batch():
    model, data = _setup()
    p = Perturbation(eps=0.1, steps=5)
    whole = perturbed_logits(model, data, p, batch_size=60)
    order = np.random.default_rng(0).permutation(len(data))
    shuffled = perturbed_logits(model, data.subset(order), p, batch_size=7)
    assert torch.allclose(shuffled, whole[order], atol=1e-5)
    # the same as PGD from the start each example draws with its own generator
    from robustmia.seeding import derive_seed

    starts = torch.cat([(torch.rand((1, *data.images.shape[1:]), generator=torch.Generator().manual_seed(derive_seed(0, int(i))))
                         * 2 - 1) * 0.1 for i in data.ids])
    x_adv = pgd(model, data.images, data.labels, eps=0.1, alpha=p.alpha, steps=5, start=(data.images + starts).clamp(0, 1))
    assert torch.allclose(model(x_adv), whole, atol=1e-5)


def test_the_cache_computes_each_point_once(tmp_path, monkeypatch):
    model, data = _setup()
    p = Perturbation(eps=0.1, steps=5)
    rows = []
    real = Perturbation.pgd
    monkeypatch.setattr(Perturbation, "pgd", lambda self, m, x, y, ids=None: rows.append(len(x)) or real(self, m, x, y, ids))
    first = perturbed_logits(model, data.subset(range(20)), p, cache=tmp_path)
    assert sum(rows) == 20
    everything = perturbed_logits(model, data, p, cache=tmp_path)
    assert sum(rows) == 60  # only the 40 new examples were perturbed
    assert torch.equal(everything[:20], first)
    again = perturbed_logits(model, data.subset(range(59, -1, -1)), p, cache=tmp_path)
    assert sum(rows) == 60 and torch.equal(again, everything.flip(0))
    other = perturbed_logits(model, data.subset(range(5)), Perturbation(eps=0.05, steps=5), cache=tmp_path)
    assert sum(rows) == 65 and not torch.equal(other, everything[:5])  # other settings, other points
    with torch.no_grad():
        next(model.parameters()).add_(0.01)  # the model trained further: its old points are not reused
    perturbed_logits(model, data.subset(range(10)), p, cache=tmp_path)
    assert sum(rows) == 75
