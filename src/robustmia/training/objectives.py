"""Training objectives: one function each, all plugged into the one loop in ``loop.py``.

An objective takes the model (in train mode), a batch of pixels ``x`` in [0, 1] with labels
``y``, the run's config and a :class:`StepContext` (where its random numbers come from, and
where training stands, for schedules such as an epsilon ramp), and returns the loss of every
example and the logits to score training accuracy on. The caller reduces the losses: the
mean over the batch in one process, a shard's share of the global mean under data
parallelism, and each model's own mean when K stacked models train at once
(``training.stacked``). Adversarial and certified objectives compute their perturbed inputs or
bounds inside, and nothing else changes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from robustmia.models.inference import eval_mode
from robustmia.robust.pgd import pgd
from robustmia.seeding import Draw, generator_draw
from robustmia.training.methods import ADVERSARIAL, CERTIFIED, fixed


class StepOutput(NamedTuple):
    losses: torch.Tensor  # one per example
    logits: torch.Tensor


@dataclass(frozen=True)
class StepContext:
    generator: torch.Generator
    step: int = 0  # optimisation steps done before this one
    total_steps: int = 1
    draw: Optional[Draw] = None  # where random starts come from; default: ``generator``

    @property
    def progress(self) -> float:
        """The fraction of training done, in [0, 1)."""
        return self.step / max(self.total_steps, 1)

    @property
    def random(self) -> Draw:
        return self.draw or generator_draw(self.generator)


Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor, Any, StepContext], StepOutput]


def loss(logits: torch.Tensor, y: torch.Tensor, config: Any) -> torch.Tensor:
    """The training cross-entropy of every example, with the config's label smoothing (a training-time attack
    maximises the plain cross-entropy: smoothing shapes what the model learns, not what the attack seeks)."""
    return F.cross_entropy(logits, y, reduction="none", label_smoothing=getattr(config, "label_smoothing", 0.0))


def natural(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Any, ctx: StepContext) -> StepOutput:
    logits = model(x)
    return StepOutput(loss(logits, y, config), logits)


@dataclass(frozen=True)
class TrainingAttack:
    """The resolved settings of an objective's training-time attack."""

    eps: float
    alpha: float
    steps: int
    random_start: bool
    mode: str

    def as_dict(self) -> dict[str, Any]:
        return {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "random_start": self.random_start, "mode": self.mode}


def training_attack(config: Any) -> TrainingAttack:
    steps, alpha_ratio, mode = ADVERSARIAL[config.method]
    steps = fixed(config.method, "attack_steps", config.attack_steps if config.attack_steps is not None else steps)
    alpha = config.step_size if config.step_size is not None else alpha_ratio * config.eps
    random_start = fixed(config.method, "random_start", config.random_start)
    return TrainingAttack(config.eps, alpha, steps, random_start, config.attack_mode or mode)


@contextlib.contextmanager
def plain(model: nn.Module) -> Iterator[nn.Module]:
    """The network an attack runs on: under DP-SGD the plain one inside opacus' per-example-gradient
    view, whose hooks record nothing meanwhile (the private step sees only the training loss)."""
    if type(model).__name__ != "GradSampleModule":
        yield model
        return
    model.disable_hooks()
    try:
        yield model._module
    finally:
        model.enable_hooks()


def adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Any, ctx: StepContext) -> StepOutput:
    """Minimise the loss on the training-time attack's points: PGD for ``pgd`` (Madry et al.),
    FGSM from a random start for ``fgsm_rs`` (Wong et al., 2020); see :data:`ADVERSARIAL`."""
    a = training_attack(config)
    with plain(model) as attacked:
        x_adv = pgd(attacked, x, y, eps=a.eps, alpha=a.alpha, steps=a.steps, random_start=a.random_start, mode=a.mode, draw=ctx.random)
    logits = model(x_adv)
    return StepOutput(loss(logits, y, config), logits)


def trades(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Any, ctx: StepContext) -> StepOutput:
    """TRADES (Zhang et al., 2019): clean cross-entropy + beta * KL(f(x) || f(x_adv)), the
    adversarial point maximising that KL from a start 0.001 * N(0, 1) away from x."""
    a = training_attack(config)
    with torch.no_grad(), eval_mode(model):
        clean_probs = F.softmax(model(x), dim=1)
    kl = lambda logits, _y: F.kl_div(F.log_softmax(logits, dim=1), clean_probs, reduction="none").sum(1)  # noqa: E731
    noise = ctx.random(torch.randn, tuple(x.shape), x.device)
    start = x + 0.001 * noise if a.random_start else x
    x_adv = pgd(model, x, y, eps=a.eps, alpha=a.alpha, steps=a.steps, mode=a.mode, loss_fn=kl, start=start)
    logits_clean, logits_adv = model(x), model(x_adv)
    robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1), reduction="none").sum(1)
    return StepOutput(loss(logits_clean, y, config) + config.trades_beta * robust, logits_adv)


def ramp(config: Any, progress: float) -> float:
    """Where the certified schedules stand: 0 before ``ramp_start``, 1 after ``ramp_end``."""
    if progress >= config.ramp_end:
        return 1.0
    if progress <= config.ramp_start:
        return 0.0
    return (progress - config.ramp_start) / (config.ramp_end - config.ramp_start)


def certified(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Any, ctx: StepContext) -> StepOutput:
    """kappa * CE(f(x), y) + (1 - kappa) * CE(worst-case logits from certified margin bounds, y),
    at the ramped epsilon: the robust loss of Wong & Kolter (convex_dual), of IBP (Gowal et al.)
    and of CROWN-IBP (Zhang et al., its bound beta * CROWN-IBP + (1 - beta) * IBP)."""
    from robustmia.robust.bounds import margin_bounds, worst_case_logits

    bound, k0, k1 = CERTIFIED[config.method]
    t = ramp(config, ctx.progress)
    kappa = (config.kappa_start if config.kappa_start is not None else k0)
    kappa += t * ((config.kappa_end if config.kappa_end is not None else k1) - kappa)
    eps = config.eps * t
    logits = model(x)
    net = unwrap(model)  # the bounds walk the plain network, not a data-parallel or compiled wrapper
    with torch.autocast(x.device.type, enabled=False):  # a bound rounded in bf16 is not sound
        if bound == "crown-ibp":
            beta = 1.0 - t
            margins = margin_bounds(net, x, y, eps, "ibp")
            if beta > 0:
                margins = beta * margin_bounds(net, x, y, eps, "crown-ibp") + (1 - beta) * margins
        else:
            margins = margin_bounds(net, x, y, eps, bound, projections=config.projections, generator=ctx.generator)
    robust = loss(worst_case_logits(margins), y, config)
    losses = robust if kappa == 0 else kappa * loss(logits, y, config) + (1 - kappa) * robust
    return StepOutput(losses, logits)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside DistributedDataParallel and torch.compile wrappers (or the model itself)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


def check_model(method: str, model: nn.Module, in_shape: tuple[int, ...]) -> None:
    """Refuse, before training starts, a model the method cannot train (naming the layer)."""
    if method in CERTIFIED:
        from robustmia.robust.graph import to_graph

        to_graph(model, in_shape, allow_batchnorm=False)
