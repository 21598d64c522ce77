"""Evaluating a model on a set of images: clean and adversarial accuracy and loss.

Evaluation always runs the model in eval mode (BatchNorm uses its running statistics and
is never updated) and restores the mode it found.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from robustmia.data.datasets import ImageSet
from robustmia.epsilon import Epsilon, StepSize
from robustmia.models.inference import eval_mode, logits_of, model_device


class Accuracy(NamedTuple):
    """Accuracy and mean cross-entropy loss on ``n`` examples (a robustness record, not membership scores)."""

    accuracy: float
    loss: float
    n: int


def clean_accuracy(model: nn.Module, data: ImageSet, batch_size: int = 500) -> Accuracy:
    logits = logits_of(model, data.images, batch_size)
    loss = F.cross_entropy(logits, data.labels).item()
    accuracy = (logits.argmax(1) == data.labels).float().mean().item()
    return Accuracy(accuracy, loss, len(data))


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


class Perturbation(BaseModel):
    """How a model's robustness is measured: PGD-``steps`` in eval mode at ``eps``, step ``eps/8``
    unless given (1/255 at 8/255, as in Madry et al.'s evaluation), optionally AutoAttack too.
    ``eps=None`` measures clean accuracy only. (Robustness "perturbations" here; membership
    "attacks" live in robustmia.privacy.)"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eps: Optional[Epsilon] = None
    steps: int = Field(default=20, ge=1)
    step_size: StepSize = None
    restarts: int = Field(default=1, ge=1)
    random_start: bool = True
    seed: int = Field(default=0, ge=0)
    autoattack: bool = False

    @classmethod
    def for_run(cls, run_eps: float, eps: Any = None, **options: Any) -> "Perturbation":
        """The one rule for a run: the given ``eps``, else the run's training eps (a natural run
        stores its robust twin's), else none (clean accuracy only). Options are validated."""
        from robustmia.validation import validate

        if eps is None and run_eps > 0:
            eps = run_eps
        return validate(cls, {"eps": eps, **options}, "evaluation perturbation")

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else (self.eps or 0.0) / 8

    def describe(self) -> dict[str, Any]:
        return {"name": "pgd", "norm": "linf", "eps": self.eps, "alpha": self.alpha, "steps": self.steps,
                "restarts": self.restarts, "random_start": self.random_start, "mode": "eval", "seed": self.seed}

    def pgd(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from robustmia.robust.pgd import pgd

        generator = torch.Generator(device=x.device).manual_seed(self.seed)
        return pgd(model, x, y, eps=self.eps, alpha=self.alpha, steps=self.steps, random_start=self.random_start,
                   restarts=self.restarts, mode="eval", generator=generator)


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
    attack: Perturbation,
    *,
    num_classes: int,
    batch_size: int = 500,
    max_examples: Optional[int] = None,
    bound: Optional[str] = "crown",
) -> dict[str, Any]:
    """The four accuracy columns of the paper's Tables I and III (train, test, adv-train,
    adv-test), with losses and sample counts; AutoAttack accuracies when asked; verified
    train and test accuracy under ``bound`` when the model is certifiable."""
    tr, te = clean_accuracy(model, members, batch_size), clean_accuracy(model, test, batch_size)
    result: dict[str, Any] = {"train_accuracy": tr.accuracy, "test_accuracy": te.accuracy, "train_loss": tr.loss,
                              "test_loss": te.loss, "n_train": tr.n, "n_test": te.n}
    if attack.eps is None:
        return result
    if max_examples is not None:
        members, test = members.subset(range(min(max_examples, len(members)))), test.subset(range(min(max_examples, len(test))))
    adv_tr, adv_te = (adversarial_accuracy(model, d, attack.pgd, batch_size) for d in (members, test))
    result.update({"adv_train_accuracy": adv_tr.accuracy, "adv_test_accuracy": adv_te.accuracy, "adv_train_loss": adv_tr.loss,
                   "adv_test_loss": adv_te.loss, "n_attacked_train": adv_tr.n, "n_attacked_test": adv_te.n,
                   "perturbation": attack.describe()})
    if attack.autoattack:
        from robustmia.robust.autoattack import autoattack

        aa = lambda m, x, y: autoattack(m, x, y, eps=attack.eps, num_classes=num_classes, seed=attack.seed)  # noqa: E731
        aa_tr, aa_te = (adversarial_accuracy(model, d, aa, batch_size) for d in (members, test))
        result.update({"autoattack_train_accuracy": aa_tr.accuracy, "autoattack_test_accuracy": aa_te.accuracy})
    if bound is not None and attack.eps > 0:
        from robustmia.robust.graph import is_certifiable

        if is_certifiable(model, tuple(members.images.shape[1:])):
            result.update({
                "verified_train_accuracy": verified_accuracy(model, members, attack.eps, bound),
                "verified_test_accuracy": verified_accuracy(model, test, attack.eps, bound),
                "verification": {"bound": bound, "eps": attack.eps},
            })
    return result
