"""DP-SGD (Abadi et al. 2016) through opacus (the optional extra ``dp``): ``dpsgd`` trains
naturally, ``dp_pgd`` on PGD points made on the current model (Madry et al.'s examples, then the
private step). Each step:

1. a Poisson sample of the members: each is in the batch with probability q = batch_size / N
   (the sampling the accountant assumes; an epoch is ceil(N / batch_size) such steps);
2. per-example gradients of the loss (opacus' GradSampleModule);
3. each clipped to L2 norm ``dp_clip``, summed, Gaussian noise of standard deviation
   ``dp_noise`` x ``dp_clip`` added, divided by the expected batch size (opacus' DPOptimizer),
   the noise drawn from the epoch's seeded generator;
4. the SGD step.

(epsilon, delta) comes from opacus' RDP accountant for noise ``dp_noise``, sample rate q, the
steps taken and ``dp_delta``; every epoch's log record carries it. opacus cannot compute
per-example gradients through BatchNorm: such a model is refused by name, or, with
``dp_batchnorm: groupnorm``, its BatchNorm layers are replaced by opacus' GroupNorm
(``ModuleValidator.fix``) when the model is built, so its checkpoints load the same way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustmia.errors import UserError
from robustmia.training.methods import DP


def _opacus():
    try:
        import opacus
    except ImportError:
        raise UserError("DP-SGD needs opacus: pip install 'robustmia[dp]'") from None
    return opacus


def sample_rate(config: Any, n_members: float) -> float:
    return min(1.0, config.batch_size / n_members)


def dp_epsilon(config: Any, n_members: float, steps: int) -> float:
    """The epsilon of opacus' RDP accountant after ``steps`` steps (at the config's delta)."""
    from opacus.accountants import RDPAccountant

    import math
    import warnings

    _opacus()
    if steps == 0:
        return 0.0
    accountant = RDPAccountant()
    accountant.history = [(config.dp_noise, sample_rate(config, n_members), steps)]
    with warnings.catch_warnings():  # "optimal order is the smallest alpha": a loose epsilon for a tiny noise, still an upper bound
        warnings.simplefilter("ignore")
        try:
            epsilon = float(accountant.get_epsilon(delta=config.dp_delta))
        except (ArithmeticError, ValueError):
            epsilon = math.inf
    if not math.isfinite(epsilon):
        raise UserError(f"dp_noise {config.dp_noise:g} is so small that the privacy accountant cannot bound epsilon "
                        f"over {steps} steps; use a noise multiplier of at least 0.1 (e.g. --set dp_noise=1.0)")
    return epsilon


def private_model(model: nn.Module, config: Any) -> nn.Module:
    """The model a DP method trains: BatchNorm refused by name, or replaced by GroupNorm (``dp_batchnorm``)."""
    if config.method not in DP:
        return model
    _opacus()
    from opacus.validators import ModuleValidator

    from robustmia.models.fast import Whitening

    if any(isinstance(m, Whitening) for m in model.modules()):
        raise UserError(f"{config.method} cannot train {config.model} with its whitening layer: it is fitted to the members, "
                        "which the privacy accountant does not count; pass model_args {whiten: false} "
                        "(--set 'model_args={whiten: false}')")

    if config.dp_batchnorm == "groupnorm":
        model = ModuleValidator.fix(model)
    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        first = str(errors[0]).strip().splitlines()[0]
        hint = "pass dp_batchnorm: groupnorm (--set dp_batchnorm=groupnorm) to replace BatchNorm by GroupNorm, or choose a model without it"
        raise UserError(f"{config.method} cannot train model {config.model}: {first}; {hint}")
    return model


def make_private(model: nn.Module, optimizer: torch.optim.Optimizer, config: Any, n_members: float):
    """(the per-example-gradient view of ``model``, the private optimizer around ``optimizer``)."""
    _opacus()
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    import warnings

    # opacus' hooks fire on the first layer, whose input needs no gradient: torch warns, harmlessly
    warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with respect to module outputs")
    expected = max(1, round(sample_rate(config, n_members) * n_members))
    view = GradSampleModule(model, loss_reduction="mean")
    private = DPOptimizer(optimizer, noise_multiplier=config.dp_noise, max_grad_norm=config.dp_clip, expected_batch_size=expected,
                          loss_reduction="mean")
    return view, private


def poisson_batches(n: int, q: float, steps: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``steps`` Poisson samples of range(n), each index in each with probability ``q``."""
    return [torch.nonzero(torch.rand(n, generator=generator) < q).flatten() for _ in range(steps)]


def noise_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on ``device`` for the step's noise, seeded from the epoch's generator."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)
