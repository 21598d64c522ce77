"""Signals that need the model itself, not only its outputs on the evaluation set: what the
label-only, white-box and verified-margin attacks read. Each probe maps (model, images,
labels) to per-example arrays; the audit computes the probes its attacks name
(``AttackSpec.probes``) once per model and caches them like every other signal.

- ``boundary-linf`` / ``boundary-l2`` -> ``boundary_linf`` / ``boundary_l2``: the distance to
  the decision boundary, estimated by a bisection over PGD radii (Choquette-Choo et al. 2021;
  Li & Zhang 2021): 0 for a misclassified example; the search radius ``max_radius`` (0.5 per
  pixel in L-inf, 0.5 * sqrt(pixels) in L2) where PGD at that radius keeps the label. Only the
  predicted label is read, but PGD follows the gradient, so this is the strongest label-only
  adversary (as Choquette-Choo et al.'s white-box boundary attack): a query-only one
  (HopSkipJump) estimates the same distance with more queries.
- ``label-keep`` -> ``keep_noise``: the fraction of ``draws`` uniform L-inf perturbations of
  radius eps that keep the true label; ``keep_adv``: the fraction of ``restarts`` PGD runs from
  random starts within radius eps that keep it.
- ``gradients`` -> ``grad_norm`` (the L2 norm of the per-example gradient of the
  cross-entropy with respect to all parameters), ``grad_norm__LAYER`` (the same per module
  that owns parameters), ``log_grad_norm``, and ``input_grad_norm`` (with respect to the input).
  Per-example gradients come from ``torch.func`` (vmap over grad), in eval mode.
- ``verified-margin`` -> ``verified_margin``: the certified lower bound of f_y - max_j f_j over
  the eps-ball (robust.bounds.margin_bounds), for models the bounds handle.
- ``pixels``: the input, average-pooled to at most 8x8 per channel, and ``label`` (the
  features of the reference-free quantile attack); it needs no model.

Every random draw is per example (its id), so an example's signal does not depend on its batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robustmia.data.datasets import ImageSet
from robustmia.errors import UserError
from robustmia.models.inference import eval_mode, model_device
from robustmia.robust.pgd import misclassified_within, pgd
from robustmia.seeding import per_example_draw


@dataclass(frozen=True)
class ProbeSettings:
    """``eps``: the radius of the label-keep and verified-margin probes; ``bisections`` and ``steps``:
    the boundary search's bisection steps and PGD steps per radius; ``draws``/``restarts``: random
    and adversarial perturbations of the label-keep probe; ``bound``: the verified margin's bound."""

    eps: Optional[float] = None
    bisections: int = 7
    steps: int = 10
    draws: int = 32
    restarts: int = 4
    bound: str = "crown"
    seed: int = 0

    def key(self, probe: str) -> str:
        """The settings a probe's values depend on, for its cache file name."""
        parts = {"boundary-linf": f"b{self.bisections}-s{self.steps}", "boundary-l2": f"b{self.bisections}-s{self.steps}",
                 "label-keep": f"eps{self.eps:.6g}-d{self.draws}-r{self.restarts}-s{self.steps}-seed{self.seed}" if self.eps else "",
                 "gradients": "", "verified-margin": f"eps{self.eps:.6g}-{self.bound}" if self.eps else "", "pixels": ""}
        return parts[probe]

    def describe(self, probe: str) -> dict[str, Any]:
        """How a probe was computed, for the attack records (with its label-only query budget)."""
        settings = {"boundary-linf": {"bisections": self.bisections, "pgd_steps": self.steps, "max_radius": "0.5 per pixel"},
                    "boundary-l2": {"bisections": self.bisections, "pgd_steps": self.steps, "max_radius": "0.5 * sqrt(pixels)"},
                    "label-keep": {"eps": self.eps, "noise_draws": self.draws, "pgd_restarts": self.restarts, "pgd_steps": self.steps},
                    "gradients": {"loss": "cross-entropy", "mode": "eval"}, "verified-margin": {"eps": self.eps, "bound": self.bound},
                    "pixels": {"pooled_to": "at most 8x8 per channel"}}[probe]
        queries = self.queries(probe)
        return {**settings, **({"queries": queries} if queries else {})}

    def queries(self, probe: str) -> Optional[str]:
        """The label-only query budget per example of a probe, in words (None: not label-only)."""
        if probe.startswith("boundary"):
            n = 1 + (self.bisections + 1) * (self.steps + 1)
            return f"{n} per example: 1 clean + {self.bisections + 1} radii x (PGD-{self.steps}, the label read at every step)"
        if probe == "label-keep":
            return f"{self.draws + self.restarts * (self.steps + 1)} per example: {self.draws} noise draws + {self.restarts} PGD-{self.steps} runs"
        return None


def _predicts(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1) == y


def max_radius(norm: str, x: torch.Tensor) -> float:
    return 0.5 if norm == "linf" else 0.5 * math.sqrt(x[0].numel())


def boundary_distance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str = "linf", bisections: int = 7,
                      steps: int = 10) -> torch.Tensor:
    """(B,) distance to the boundary by bisection over PGD radii (see the module docstring)."""
    top = max_radius(norm, x)
    correct = _predicts(model, x, y)
    lo = torch.zeros(len(x), device=x.device)
    hi = torch.full_like(lo, top)
    flips_at_top = misclassified_within(model, x, y, hi, steps=steps, norm=norm)
    for _ in range(bisections):
        mid = (lo + hi) / 2
        flipped = misclassified_within(model, x, y, mid, steps=steps, norm=norm)
        hi, lo = torch.where(flipped, mid, hi), torch.where(flipped, lo, mid)
    return torch.where(~correct, torch.zeros_like(lo), torch.where(flips_at_top, (lo + hi) / 2, hi)).cpu()


def label_keep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor, *, eps: float, draws: int, restarts: int,
               steps: int, seed: int) -> dict[str, torch.Tensor]:
    """Fractions of random and of adversarial perturbations within radius ``eps`` that keep the label."""
    draw = per_example_draw(seed, ids)
    kept = torch.zeros(len(x))
    for _ in range(draws):
        noise = (draw(torch.rand, tuple(x.shape), x.device) * 2 - 1) * eps
        kept += _predicts(model, (x + noise).clamp(0, 1), y).float().cpu()
    held = torch.zeros(len(x))
    for _ in range(restarts):
        x_adv = pgd(model, x, y, eps=eps, alpha=2.5 * eps / steps, steps=steps, mode="eval", draw=draw)
        held += _predicts(model, x_adv, y).float().cpu()
    return {"keep_noise": kept / draws, "keep_adv": held / restarts}


def _owners(model: nn.Module) -> list[str]:
    """The name of the module that owns each parameter, in parameter order."""
    return [n.rsplit(".", 1)[0] if "." in n else "model" for n, _ in model.named_parameters()]


def _one_by_one(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-example parameter gradients of the cross-entropy, one backward pass per example (what vmap computes)."""
    names = [k for k, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    rows = [torch.autograd.grad(F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), params, allow_unused=True) for i in range(len(x))]
    return {k: torch.stack([r[j] if r[j] is not None else torch.zeros_like(params[j]) for r in rows]) for j, k in enumerate(names)}


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example gradient norms of the cross-entropy (see the module docstring)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, (p, buffers), (xi.unsqueeze(0),)), yi.unsqueeze(0))

    try:
        per_example = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    except RuntimeError as e:  # a layer torch.func cannot transform (e.g. an autograd.Function without setup_context,
        if "functorch" not in str(e) and "vmap" not in str(e):  # as in DeepMind's RobustBench WideResNets): one by one
            raise
        per_example = _one_by_one(model, x, y)
    squares: dict[str, torch.Tensor] = {}
    for owner, g in zip(_owners(model), per_example.values()):
        squares[owner] = squares.get(owner, 0) + g.flatten(1).pow(2).sum(1)
    total = sum(squares.values())
    xg = x.detach().clone().requires_grad_(True)
    (dx,) = torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg)
    out = {"grad_norm": total.sqrt(), "log_grad_norm": 0.5 * torch.log(total.clamp_min(1e-60)), "input_grad_norm": dx.flatten(1).norm(dim=1)}
    out.update({f"grad_norm__{k}": v.sqrt() for k, v in squares.items()})
    return {k: v.detach().cpu() for k, v in out.items()}


def verified_margin(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, bound: str) -> torch.Tensor:
    """(B,) certified lower bound of f_y - max_{j != y} f_j over the eps-ball."""
    from robustmia.robust.bounds import margin_bounds

    with torch.no_grad():
        margins = margin_bounds(model, x, y, eps, bound)
    return margins.scatter(1, y.view(-1, 1), float("inf")).min(1).values.cpu()


def pixels(x: torch.Tensor) -> torch.Tensor:
    side = (min(x.shape[-2], 8), min(x.shape[-1], 8))
    return F.adaptive_avg_pool2d(x, side).flatten(1).cpu()


def _one_batch(probe: str, model: Optional[nn.Module], x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor,
               s: ProbeSettings) -> dict[str, torch.Tensor]:
    if probe == "pixels":
        return {"pixels": pixels(x), "label": y.float().cpu()}
    if probe in ("boundary-linf", "boundary-l2"):
        norm = probe.removeprefix("boundary-")
        return {f"boundary_{norm}": boundary_distance(model, x, y, norm=norm, bisections=s.bisections, steps=s.steps)}
    if probe == "label-keep":
        return label_keep(model, x, y, ids, eps=s.eps, draws=s.draws, restarts=s.restarts, steps=s.steps, seed=s.seed)
    if probe == "gradients":
        return gradient_norms(model, x, y)
    return {"verified_margin": verified_margin(model, x, y, eps=s.eps, bound=s.bound)}


PROBES = ("boundary-linf", "boundary-l2", "label-keep", "gradients", "verified-margin", "pixels")
NEEDS_EPS = ("label-keep", "verified-margin")


def check_probe(probe: str, model: Optional[nn.Module], data: ImageSet, settings: ProbeSettings, attack: str = "") -> None:
    """A one-line UserError if ``probe`` cannot run on ``model`` (no eps; no model; bounds it cannot handle)."""
    who = f"attack {attack}" if attack else f"probe {probe}"
    if probe in NEEDS_EPS and not settings.eps:
        raise UserError(f"{who} needs an epsilon: pass --eps (e.g. 8/255); the target was trained with none")
    if probe != "pixels" and model is None:
        raise UserError(f"{who} needs the model itself (its weights), not only its predictions")
    if probe == "verified-margin":
        from robustmia.robust.graph import to_graph

        try:
            to_graph(model, tuple(data.images.shape[1:]))
        except UserError as e:
            raise UserError(f"{who} needs a model the certified bounds handle: {str(e).removeprefix('cannot certify: ')}") from None


def probe_signals(probe: str, model: Optional[nn.Module], data: ImageSet, settings: ProbeSettings,
                  batch_size: int = 500) -> dict[str, np.ndarray]:
    """The signals of one probe on ``data`` (see the module docstring), batch by batch."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; choose from {PROBES}")
    check_probe(probe, model, data, settings)
    device = model_device(model) if model is not None else torch.device("cpu")
    ids = data.ids if data.ids is not None else torch.arange(len(data))
    step: Callable = lambda i: _one_batch(probe, model, data.images[i:i + batch_size].to(device),  # noqa: E731
                                          data.labels[i:i + batch_size].to(device), ids[i:i + batch_size], settings)
    if probe == "gradients":  # per-example gradients of every parameter: batches sized to the model
        n_params = sum(p.numel() for p in model.parameters())
        batch_size = max(1, min(batch_size, int(2**28 // max(n_params, 1))))
    if model is None:
        parts = [step(i) for i in range(0, len(data), batch_size)]
    else:
        with eval_mode(model):
            parts = [step(i) for i in range(0, len(data), batch_size)]
    return {k: torch.cat([p[k] for p in parts]).numpy().astype(np.float64) for k in parts[0]} if parts else {}
