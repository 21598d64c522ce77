"""Attacks in pixel space: L-infinity PGD, L2 PGD and FGSM, one call shape for all.

``attack(model, x, y, eps=..., ...) -> x_adv`` with ``x`` in [0, 1]. Every returned point
lies within ``eps`` of ``x`` (in the attack's norm) and inside [0, 1].

The model's mode during the attack is explicit (``mode``): ``"eval"`` for evaluation;
``"train"`` for the training-time attack of Madry et al., which sees BatchNorm batch
statistics. In train mode the attack never changes the running statistics: they are
restored afterwards, so only the training step itself updates them.

Gradients are taken with respect to the input only (``torch.autograd.grad``), so the
attack's backward passes skip the weight gradients.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from robustmia.seeding import Draw, generator_draw

Mode = Literal["eval", "train"]
Norm = Literal["linf", "l2"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, y) -> per-example loss


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


@contextlib.contextmanager
def attack_mode(model: nn.Module, mode: Mode) -> Iterator[None]:
    """Put ``model`` in ``mode`` for an attack; restore its mode and BatchNorm statistics after."""
    was_training = model.training
    # (a stack of K models, training.stacked, keeps its models' BatchNorm statistics as buffers of its own)
    keeps = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) or getattr(m, "holds_batch_statistics", False)]
    saved = [(b, b.detach().clone()) for m in keeps for b in m.buffers(recurse=False)] if mode == "train" else []
    # the attack needs input gradients only: frozen weights spare autograd their bookkeeping
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    model.train(mode == "train")
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)
        for p in trainable:
            p.requires_grad_(True)
        model.train(was_training)


def _l2_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def _random_start(x: torch.Tensor, eps: float, norm: str, draw: Draw) -> torch.Tensor:
    if norm == "linf":
        delta = (draw(torch.rand, tuple(x.shape), x.device) * 2 - 1) * eps
    else:
        d = draw(torch.randn, tuple(x.shape), x.device)
        r = draw(torch.rand, tuple(x.shape[:1]), x.device).view(-1, *([1] * (x.dim() - 1)))
        delta = d / _l2_norm(d) * r * eps
    return (x + delta).clamp(0, 1)


def _project(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / _l2_norm(delta)).clamp(max=1.0)
    return (x + delta).clamp(0, 1)


def _run(model, x, y, eps, alpha, steps, norm, start, loss_fn) -> torch.Tensor:
    x_adv = start.detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = loss_fn(model(x_adv), y).sum()
        (grad,) = torch.autograd.grad(loss, x_adv)
        step = grad.sign() if norm == "linf" else grad / _l2_norm(grad)
        x_adv = _project(x, x_adv.detach() + alpha * step, eps, norm)
    return x_adv.detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool = True,
    restarts: int = 1,
    mode: Mode = "eval",
    norm: Norm = "linf",
    loss_fn: LossFn = cross_entropy,
    generator: Optional[torch.Generator] = None,
    start: Optional[torch.Tensor] = None,
    draw: Optional[Draw] = None,
) -> torch.Tensor:
    """PGD (Madry et al.): ``steps`` ascent steps of size ``alpha`` on ``loss_fn`` (signed gradient
    for ``norm="linf"``, normalised gradient for ``"l2"``), each projected onto the ``eps`` ball
    around ``x`` and onto [0, 1]. The first point is ``start`` if given, else uniform in the ball
    (``random_start``, drawn from ``generator``, or by ``draw`` if given), else ``x``. With
    ``restarts`` > 1 the highest-loss point per example wins."""
    if eps < 0 or alpha <= 0 or steps < 1 or restarts < 1 or norm not in ("linf", "l2"):
        raise ValueError(f"bad attack settings: eps={eps}, alpha={alpha}, steps={steps}, restarts={restarts}, norm={norm}")
    x = x.detach()
    if eps == 0:
        return x.clone()
    with attack_mode(model, mode):
        best, best_loss = None, None
        for _ in range(restarts):
            if start is not None:
                x0 = _project(x, start, eps, norm)
            elif random_start:
                x0 = _random_start(x, eps, norm, draw or generator_draw(generator))
            else:
                x0 = x
            x_adv = _run(model, x, y, eps, alpha, steps, norm, x0, loss_fn)
            if restarts == 1:
                return x_adv
            with torch.no_grad():
                loss = loss_fn(model(x_adv), y)
            if best is None:
                best, best_loss = x_adv, loss
            else:
                better = (loss > best_loss).view(-1, *([1] * (x.dim() - 1)))
                best, best_loss = torch.where(better, x_adv, best), torch.maximum(loss, best_loss)
        return best


def misclassified_within(model: nn.Module, x: torch.Tensor, y: torch.Tensor, radii: torch.Tensor, *, steps: int,
                         norm: Norm = "linf") -> torch.Tensor:
    """(B,) bool: whether PGD in eval mode, with a radius per example (``radii``) and step 2.5 *
    radius / steps (Madry et al.'s rule), from ``x``, reaches a misclassified point at any step:
    a proof that the decision boundary lies within that radius."""
    x = x.detach()
    eps = radii.to(x).view(-1, *([1] * (x.dim() - 1)))
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    with attack_mode(model, "eval"):
        x_adv = x
        for _ in range(steps):
            x_adv = x_adv.clone().requires_grad_(True)
            logits = model(x_adv)
            found |= logits.argmax(1) != y
            (grad,) = torch.autograd.grad(cross_entropy(logits, y).sum(), x_adv)
            step = grad.sign() if norm == "linf" else grad / _l2_norm(grad)
            x_adv = _project(x, x_adv.detach() + 2.5 * eps / steps * step, eps, norm)
        with torch.no_grad():
            found |= model(x_adv).argmax(1) != y
    return found


def pgd_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, **settings) -> torch.Tensor:
    """L2 PGD: :func:`pgd` with ``norm="l2"``."""
    return pgd(model, x, y, norm="l2", **settings)


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: Optional[float] = None,
         random_start: bool = False, **settings) -> torch.Tensor:
    """FGSM (Goodfellow et al.): one signed-gradient step of ``eps``. With ``random_start`` and
    ``alpha = 1.25 * eps`` it is the attack of fast adversarial training (Wong et al., 2020)."""
    return pgd(model, x, y, eps=eps, alpha=eps if alpha is None else alpha, steps=1, random_start=random_start, **settings)

