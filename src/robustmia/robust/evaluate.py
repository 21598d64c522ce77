"""Evaluating a model on a set of images: clean and adversarial accuracy and loss.

Evaluation always runs the model in eval mode (BatchNorm uses its running statistics and
is never updated) and restores the mode it found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robustmia.data.datasets import ImageSet
from robustmia.io import atomic_write
from robustmia.models.inference import eval_mode, logits_of, model_device, state_sha256
from robustmia.robust.perturbation import Perturbation


class Accuracy(NamedTuple):
    """Accuracy and mean cross-entropy loss on ``n`` examples (a robustness record, not membership scores)."""

    accuracy: float
    loss: float
    n: int


def accuracy_of(logits: torch.Tensor, labels: torch.Tensor) -> Accuracy:
    loss = F.cross_entropy(logits, labels).item()
    return Accuracy((logits.argmax(1) == labels).float().mean().item(), loss, len(labels))


def clean_accuracy(model: nn.Module, data: ImageSet, batch_size: int = 500) -> Accuracy:
    return accuracy_of(logits_of(model, data.images, batch_size), data.labels)


def adversarial_accuracy(
    model: nn.Module, data: ImageSet, attack: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor], batch_size: int = 500
) -> Accuracy:
    """Accuracy and loss on ``attack(model, x, y)`` for every batch of ``data`` (model in eval mode)."""
    device = model_device(model)
    correct, loss_sum = 0, 0.0
    with eval_mode(model):
        for i in range(0, len(data), batch_size):
            x, y = data.images[i : i + batch_size].to(device), data.labels[i : i + batch_size].to(device)
            x_adv = attack(model, x, y)
            with torch.no_grad():
                logits = model(x_adv).float()
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
    return Accuracy(correct / len(data), loss_sum / len(data), len(data))


def perturbed_logits(model: nn.Module, data: ImageSet, perturbation: Perturbation, *, batch_size: int = 500,
                     cache: Optional[Path] = None) -> torch.Tensor:
    """The model's logits on the PGD points of ``data`` (eval mode). With ``cache`` (a folder, e.g.
    a run's) and example ids, each example's point is made once for these settings and these
    weights: rows found in ``cache/perturbed-<settings>-<weights>.npz`` are read back, only the
    missing ones are computed and added, so the evaluation and the membership signals of one model
    share their PGD points (and a model trained further gets new ones)."""
    path = None
    if cache is not None and data.ids is not None:
        path = cache / f"perturbed-{perturbation.key()}-{state_sha256(model)[:12]}.npz"
    known: dict[int, np.ndarray] = {}
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                known = dict(zip(z["ids"].tolist(), z["logits"]))
        except Exception:
            known = {}  # a damaged cache is recomputed
    ids = data.ids.tolist() if data.ids is not None else [None] * len(data)
    todo = [i for i, e in enumerate(ids) if e not in known]
    if todo:
        part = data.subset(todo)
        device = model_device(model)
        points = []
        with eval_mode(model):
            for i in range(0, len(part), batch_size):
                x, y = part.images[i : i + batch_size].to(device), part.labels[i : i + batch_size].to(device)
                points.append(perturbation.pgd(model, x, y, None if part.ids is None else part.ids[i : i + batch_size]).cpu())
        fresh = logits_of(model, torch.cat(points), batch_size).numpy()
        if path is None:
            return torch.from_numpy(fresh)
        known.update(zip((ids[i] for i in todo), fresh))
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            order = sorted(known)
            np.savez(f, ids=np.asarray(order, dtype=np.int64), logits=np.stack([known[k] for k in order]))
    return torch.from_numpy(np.stack([known[e] for e in ids]))


def verified_accuracy(model: nn.Module, data: ImageSet, eps: float, method: str, batch_size: int = 100) -> float:
    """The fraction of ``data`` whose label is certified at ``eps`` by the bound ``method``."""
    from robustmia.robust.bounds import margin_bounds, verified

    device = model_device(model)
    count = 0
    with eval_mode(model), torch.no_grad():
        for i in range(0, len(data), batch_size):
            x, y = data.images[i : i + batch_size].to(device), data.labels[i : i + batch_size].to(device)
            count += int(verified(margin_bounds(model, x, y, eps, method), y).sum())
    return count / len(data)


def evaluate_model(
    model: nn.Module,
    members: ImageSet,
    test: ImageSet,
    perturbation: Perturbation,
    *,
    num_classes: int,
    batch_size: int = 500,
    max_examples: Optional[int] = None,
    bound: Optional[str] = "crown",
    cache: Optional[Path] = None,
) -> dict[str, Any]:
    """The four accuracy columns of the paper's Tables I and III (train, test, adv-train,
    adv-test), with losses and sample counts; AutoAttack accuracies when asked; verified
    train and test accuracy under ``bound`` when the model is certifiable."""
    tr, te = clean_accuracy(model, members, batch_size), clean_accuracy(model, test, batch_size)
    result: dict[str, Any] = {"train_accuracy": tr.accuracy, "test_accuracy": te.accuracy, "train_loss": tr.loss,
                              "test_loss": te.loss, "n_train": tr.n, "n_test": te.n}
    if perturbation.eps is None:
        return result
    if max_examples is not None:
        members, test = members.subset(range(min(max_examples, len(members)))), test.subset(range(min(max_examples, len(test))))
    adv_tr, adv_te = (accuracy_of(perturbed_logits(model, d, perturbation, batch_size=batch_size, cache=cache), d.labels)
                      for d in (members, test))
    result.update({"adv_train_accuracy": adv_tr.accuracy, "adv_test_accuracy": adv_te.accuracy, "adv_train_loss": adv_tr.loss,
                   "adv_test_loss": adv_te.loss, "n_attacked_train": adv_tr.n, "n_attacked_test": adv_te.n,
                   "perturbation": perturbation.describe()})
    if perturbation.autoattack:
        from robustmia.robust.autoattack import autoattack, implementation

        aa = lambda m, x, y: autoattack(m, x, y, eps=perturbation.eps, num_classes=num_classes, seed=perturbation.seed)  # noqa: E731
        aa_tr, aa_te = (adversarial_accuracy(model, d, aa, batch_size) for d in (members, test))
        result.update({"autoattack_train_accuracy": aa_tr.accuracy, "autoattack_test_accuracy": aa_te.accuracy,
                       "autoattack": {"implementation": implementation(), "version": "standard", "norm": "Linf", "eps": perturbation.eps}})
    if bound is not None and perturbation.eps > 0:
        from robustmia.robust.graph import is_certifiable

        if is_certifiable(model, tuple(members.images.shape[1:])):
            result.update({
                "verified_train_accuracy": verified_accuracy(model, members, perturbation.eps, bound),
                "verified_test_accuracy": verified_accuracy(model, test, perturbation.eps, bound),
                "verification": {"bound": bound, "eps": perturbation.eps},
            })
    return result
