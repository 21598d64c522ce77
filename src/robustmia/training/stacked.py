"""K models of one architecture and recipe, trained at once as one batched computation.

Reference models (LiRA, RMIA, shadow thresholds) share the target's recipe and differ only in
their seed and training subset. :class:`StackedModels` holds the K models' parameters
stacked along a new first dimension and runs them with ``torch.func`` (``functional_call``
under ``vmap``): one forward and one backward pass serve all K, so small models stop paying
Python and kernel-launch overhead K times. The objectives are the loop's own: they see one
model on a batch of K x B rows, model k taking rows k*B to (k+1)*B.

Everything else stays per model, exactly as ``training.loop`` does it one by one: the seed of
the initial weights, the per-epoch generator, data order, augmentation and random starts
(drawn from model k's generator for its rows only), the learning rate, the momentum and the
run folder with its log and checkpoints. The weights therefore equal those of one-by-one
training up to floating-point rounding (tested to 1e-5), and a stacked group resumes from
checkpoints that either way of training wrote. Models whose training sets differ in size
run their last, smaller batches padded and masked, and sit out the steps they do not have.

Stackable: networks without dropout, trained with ``natural``, ``pgd``, ``fgsm_rs`` or ``trades``.
BatchNorm layers keep batch statistics per model: under ``vmap`` each model's layer normalises its
own rows (only the rows it has this step: a padded row never enters a statistic), and its running
statistics are updated after every training-mode forward pass, as ``nn.BatchNorm2d`` does in place,
except inside a training-time attack, whose passes leave them alone (robust.pgd.attack_mode).
Certified objectives walk one network's graph and train one by one. The ``amp`` and
``channels_last`` switches apply to a stack as to one model; ``compile`` does not (the stack runs
eagerly).
"""

from __future__ import annotations

import copy
import time
import types
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from robustmia.data.datasets import ImageSet, dataset_info, load_dataset
from robustmia.data.transforms import augment
from robustmia.progress import Progress, emit
from robustmia.seeding import Draw, generator_draw
from robustmia.training.config import TrainConfig
from robustmia.training.loop import RunSession, autocast, prepare_batch
from robustmia.training.checkpoint import recover_group, save_group
from robustmia.training.methods import STACKABLE
from robustmia.training.methods import objective as method_objective
from robustmia.training.objectives import StepContext
from robustmia.models.inference import resolve_device
from robustmia.training.run import build_initial_model

_COUPLING = (nn.modules.dropout._DropoutNd, nn.GroupNorm, nn.LayerNorm)


def _modules(config: TrainConfig) -> list[nn.Module]:
    return list(build_initial_model(config, dataset_info(config.dataset, config.data_dir)).modules())


def stackable(config: TrainConfig, modules: Optional[list[nn.Module]] = None) -> bool:
    """Can K models of this recipe train stacked? (See the module's docstring.)"""
    if config.method not in STACKABLE or config.early_stop or config.nesterov or config.lookahead:
        return False  # (the stacked optimizer is plain SGD with momentum)
    return not any(isinstance(m, _COUPLING) for m in (modules if modules is not None else _modules(config)))


def stacking_pays(config: TrainConfig, device: torch.device) -> bool:
    """Stack where it is faster: on GPUs (K small kernel launches become one) and, on CPUs, for
    networks without convolutions. vmap runs K convolutions as one grouped convolution, which
    the CPU kernels run slower than K separate ones (0.7x for the digits CNN, benchmarks/bench_scale.py)."""
    if config.method not in STACKABLE:
        return False
    modules = _modules(config)
    return stackable(config, modules) and (device.type == "cuda" or not any(isinstance(m, nn.Conv2d) for m in modules))


class _BatchStatistics:
    """What the stack's BatchNorm layers share during one vmapped forward pass: which of a model's rows
    are real (``valid``, (rows,) bool under vmap) and the statistics each training-mode layer took."""

    def __init__(self) -> None:
        self.valid: Optional[torch.Tensor] = None
        self.taken: list[tuple[str, torch.Tensor, torch.Tensor]] = []


def _batch_norm(name: str, shared: _BatchStatistics):
    """The forward of one BatchNorm layer of a stack's base network, called under vmap on one model's rows:
    batch statistics of its valid rows in training mode (recorded for the running update), running ones in eval."""

    def forward(self: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        z = x.float()
        if self.training or self.running_mean is None:
            dims = [0, *range(2, x.dim())]
            valid = shared.valid.to(z.dtype).view(-1, *([1] * (x.dim() - 1)))
            count = (valid.sum() * z[0, 0].numel()).clamp_min(1)  # (a model without rows this step: its output is unused)
            mean = (z * valid).sum(dims) / count
            centred = z - mean.view(shape)
            var = (centred.square() * valid).sum(dims) / count
            out = centred * torch.rsqrt(var + self.eps).view(shape) * valid  # a padded row feeds no gradient to the statistics
            if self.training and self.running_mean is not None:
                shared.taken.append((name, mean.detach(), (var * count / (count - 1).clamp_min(1)).detach()))
        else:
            out = (z - self.running_mean.view(shape)) * torch.rsqrt(self.running_var.view(shape) + self.eps)
        if self.weight is not None:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)

    return forward


class StackedModels(nn.Module):
    """K networks of one architecture as one module: rows k*B to (k+1)*B of a batch of K x B go to model k.
    ``counts`` (K,), when set, says how many of each model's B rows are real (the others are padding)."""

    holds_batch_statistics = True  # its BatchNorm running statistics are buffers of its own (robust.pgd.attack_mode)

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        params, buffers = stack_module_state(list(models))
        self.k = len(models)
        self.names = list(params)
        self.stacked = nn.ParameterList([nn.Parameter(params[n].detach().clone(), requires_grad=params[n].requires_grad)
                                         for n in self.names])
        self.buffer_names = list(buffers)
        for n in self.buffer_names:  # real buffers: moved with the stack, and saved and restored around an attack
            self.register_buffer(_buffer_key(n), buffers[n].detach().clone())
        self.base = copy.deepcopy(models[0]).to("meta")
        self.shared = _BatchStatistics()
        self.norms: dict[str, nn.modules.batchnorm._BatchNorm] = {}
        for name, m in self.base.named_modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.forward = types.MethodType(_batch_norm(name, self.shared), m)
                self.norms[name] = m
        self.counts: Optional[torch.Tensor] = None

    @property
    def buffer_values(self) -> dict[str, torch.Tensor]:
        return {n: getattr(self, _buffer_key(n)) for n in self.buffer_names}

    def _apply_one(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
                   valid: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self.shared.valid, self.shared.taken = valid, []
        out = functional_call(self.base, {**params, **buffers}, (x,))
        taken, self.shared.taken = self.shared.taken, []
        return out, [t for _, mean, var in taken for t in (mean, var)]

    def _params(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.stacked))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = x.view(self.k, -1, *x.shape[1:])
        rows = xs.shape[1]
        counts = self.counts if self.counts is not None else torch.full((self.k,), rows, device=x.device)
        valid = torch.arange(rows, device=x.device)[None, :] < counts[:, None]
        names = [n for n, m in self.norms.items() if m.training and self.training and m.running_mean is not None]
        out, stats = vmap(self._apply_one)(self._params(), self.buffer_values, xs, valid)
        if names:
            self._update_running(names, stats, counts > 0)
        return out.reshape(-1, *out.shape[2:])

    @torch.no_grad()
    def _update_running(self, names: list[str], stats: list[torch.Tensor], active: torch.Tensor) -> None:
        """Each active model's running statistics, updated from the batch as nn.BatchNorm does in place
        (a model without rows this step keeps its own)."""
        for i, name in enumerate(names):
            m, prefix = self.norms[name], f"{name}." if name else ""
            mean, var = stats[2 * i], stats[2 * i + 1]
            tracked = getattr(self, _buffer_key(prefix + "num_batches_tracked"), None)
            if tracked is not None:
                tracked.add_(active.to(tracked.dtype))
            if m.momentum is None:  # a cumulative average
                factor = 1.0 / tracked.clamp_min(1).to(mean.dtype)
            else:
                factor = torch.full((self.k,), float(m.momentum), device=mean.device, dtype=mean.dtype)
            factor = (factor * active.to(mean.dtype)).view(-1, 1)
            for key, batch in (("running_mean", mean), ("running_var", var)):
                running = getattr(self, _buffer_key(prefix + key))
                running.copy_((running + factor * (batch.to(running.dtype) - running)).to(running.dtype))


def _buffer_key(name: str) -> str:
    return "stacked_" + name.replace(".", "__")


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _per_model(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (K,) vector shaped to broadcast over stacked tensors like ``like`` (K, ...)."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def _pad(t: torch.Tensor, rows: int) -> torch.Tensor:
    return F.pad(t, (0, 0) * (t.dim() - 1) + (0, rows - len(t))) if len(t) < rows else t


def _stacked_draw(draws: list[Optional[Draw]], counts: list[int], rows: int) -> Draw:
    """Model k's random numbers for its ``counts[k]`` rows from its own generator, padded to ``rows``."""

    def draw(fn, shape, device):
        parts = []
        for d, n in zip(draws, counts):  # d is None where a model has no batch this step
            parts.append(_pad(d(fn, (n, *shape[1:]), device), rows) if d is not None else torch.zeros((rows, *shape[1:]), device=device))
        return torch.cat(parts)

    return draw


class _StackedSGD:
    """torch.optim.SGD (momentum, weight decay, no dampening or Nesterov) on stacked parameters,
    with each model's own learning rate, and models without a batch this step left alone."""

    def __init__(self, stack: StackedModels, runs: Sequence[RunSession]):
        self.stack = stack
        self.momentum, self.wd = runs[0].config.momentum, runs[0].config.weight_decay
        self.params = [p for p in stack.stacked if p.requires_grad]  # what the loop's optimizer trains (frozen ones stay)
        self.bufs = [torch.zeros_like(p) for p in self.params]
        self.started = torch.zeros(stack.k, dtype=torch.bool, device=self.bufs[0].device)
        for k, run in enumerate(runs):  # resumed runs bring their momentum
            state = [run.optimizer.state.get(p, {}).get("momentum_buffer") for p in _trainable(run.model)]
            if all(s is not None for s in state):
                for buf, s in zip(self.bufs, state):
                    buf[k] = s
                self.started[k] = True

    @torch.no_grad()
    def step(self, lr: torch.Tensor, active: torch.Tensor) -> None:
        params = self.params
        grads = [p.grad for p in params]
        if not bool(active.all()):  # some models have no batch this step: update the others only
            self._masked_step(params, grads, lr, active)
            return
        # every model steps: torch.optim.SGD's own foreach arithmetic, with per-model learning rates
        if self.wd:
            grads = torch._foreach_add(grads, params, alpha=self.wd)
        if self.momentum:
            if bool(self.started.all()):
                torch._foreach_mul_(self.bufs, self.momentum)
                torch._foreach_add_(self.bufs, grads)
            else:
                for buf, d in zip(self.bufs, grads):
                    buf.copy_(torch.where(_per_model(self.started, d), buf * self.momentum + d, d))
            grads = self.bufs
            self.started[:] = True
        if bool((lr == lr[0]).all()):
            torch._foreach_add_(params, grads, alpha=-float(lr[0]))
        else:
            for p, d in zip(params, grads):
                p.sub_(_per_model(lr, p) * d)

    def _masked_step(self, params, grads, lr: torch.Tensor, active: torch.Tensor) -> None:
        for p, g, buf in zip(params, grads, self.bufs):
            on = _per_model(active, p)
            d = g.add(p, alpha=self.wd) if self.wd else g
            if self.momentum:
                d = torch.where(_per_model(self.started, p), buf * self.momentum + d, d)
                buf.copy_(torch.where(on, d, buf))
            p.copy_(torch.where(on, p - _per_model(lr, p) * d, p))
        self.started |= active

    def write_back(self, k: int, run: RunSession, lr: float) -> None:
        """Model k's weights and momentum into its own module and torch optimizer (to checkpoint)."""
        with torch.no_grad():  # stack_module_state keeps the order of named_parameters and named_buffers
            for p, stacked in zip(run.model.parameters(), self.stack.stacked):
                p.copy_(stacked[k])
            for b, stacked in zip(run.model.buffers(), self.stack.buffer_values.values()):  # BatchNorm's running statistics
                b.copy_(stacked[k])
        if self.momentum and self.started[k]:
            for p, buf in zip(_trainable(run.model), self.bufs):
                run.optimizer.state[p]["momentum_buffer"] = buf[k].clone()
        for g in run.optimizer.param_groups:
            g["lr"] = lr


def train_stacked(
    configs: Sequence[TrainConfig],
    outs: Sequence[str | Path],
    members: Sequence[ImageSet],
    *,
    device: str = "auto",
    progress: Optional[Progress] = None,
) -> list[dict[str, Any]]:
    """Train ``configs[k]`` on ``members[k]`` into ``outs[k]`` for every k, stacked; a folder that
    holds a finished or interrupted run of its config is resumed. Returns each last epoch's record.
    The configs must be one recipe (they may differ in their seed only)."""
    recipe = {k: v for k, v in configs[0].identity().items() if k != "seed"}
    if any({k: v for k, v in c.identity().items() if k != "seed"} != recipe for c in configs):
        raise ValueError("stacked models must share one recipe (all but their seeds)")
    if not stackable(configs[0]):
        raise ValueError(f"{configs[0].model} with {configs[0].method} cannot train stacked; train the models one by one")
    dev = resolve_device(device)
    config = configs[0]
    recover_group([Path(o) for o in outs])  # a kill inside the group's last checkpoint: finish or undo it for all
    train_set, test_set = load_dataset(config.dataset, config.data_dir) if config.eval_every else (None, None)
    runs = [RunSession.open(c, Path(o), resume=True, train_set=train_set, test_set=test_set, members=m, device=dev)
            for c, o, m in zip(configs, outs, members)]
    try:
        todo = [r for r in runs if not r.done]
        if todo:
            _train(todo, test_set, dev, progress)
    finally:
        for r in runs:
            r.release()
    return [r.record for r in runs]


def _train(runs: list[RunSession], test_set: Optional[ImageSet], dev: torch.device, progress: Optional[Progress]) -> None:
    config = runs[0].config
    objective = method_objective(config.method)
    kind = config.resolved_augment(dataset_info(config.dataset, config.data_dir).augment)
    rows, k_models = config.batch_size, len(runs)
    stack = StackedModels([r.model for r in runs])
    optimizer = _StackedSGD(stack, runs)
    data = [(r.members.images.to(dev), r.members.labels.to(dev)) for r in runs]  # on the device, as in the loop
    emit(progress, "start", task=f"{k_models} stacked {config.model} ({config.method})",
         total=sum(r.total_steps for r in runs), completed=sum(r.step for r in runs))
    while not all(r.done for r in runs):
        started = time.perf_counter()
        epoch = [r.batches() if not r.done else (None, []) for r in runs]
        loss_sum = torch.zeros(k_models, device=dev)
        correct = torch.zeros(k_models, device=dev, dtype=torch.long)
        seen = [0] * k_models
        lrs = [r.lr() for r in runs]
        trained = [bool(batches) for _, batches in epoch]
        stack.train()
        for s in range(max(len(b) for _, b in epoch)):
            xs, ys, counts, draws = [], [], [], []
            for k, (run, (generator, batches), (images, labels)) in enumerate(zip(runs, epoch, data)):
                idx = batches[s].to(dev) if s < len(batches) else torch.zeros(0, dtype=torch.long, device=dev)
                xs.append(augment(images[idx], kind, generator) if len(idx) else images[idx])
                ys.append(labels[idx])
                draws.append(generator_draw(generator) if len(idx) else None)
                if len(idx):
                    lrs[k] = run.lr()
                counts.append(len(idx))
            x = prepare_batch(torch.cat([_pad(t, rows) for t in xs]), config)
            y = torch.cat([_pad(t, rows) for t in ys])
            n = torch.tensor(counts, device=dev)
            mask = torch.arange(rows, device=dev)[None, :] < n[:, None]
            lead = next(r for r, c in zip(runs, counts) if c)
            stack.counts = n
            with autocast(config, dev):
                out = objective(stack, x, y, config, StepContext(None, lead.step, lead.total_steps, _stacked_draw(draws, counts, rows)))
            losses = out.losses.view(k_models, rows) * mask
            stack.zero_grad(set_to_none=True)
            (losses.sum(1) / n.clamp_min(1)).sum().backward()
            optimizer.step(torch.tensor(lrs, device=dev), n > 0)
            loss_sum += losses.detach().sum(1)
            correct += ((out.logits.detach().argmax(1).view(k_models, rows) == y.view(k_models, rows)) & mask).sum(1)
            for k, c in enumerate(counts):
                if c:
                    seen[k] += c
                    runs[k].step += 1
            emit(progress, "advance", steps=int((n > 0).sum()))
        due = []
        for k, run in enumerate(runs):
            if trained[k]:
                optimizer.write_back(k, run, lrs[k])
                record = run.end_epoch(test_set, lr=lrs[k], loss_sum=loss_sum[k].item(), correct=int(correct[k]), seen=seen[k],
                                       started=started, checkpoint=False)
                emit(progress, "record", task=run.out.name, epochs=run.n_epochs, **record)
                if run.checkpoint_due:
                    due.append(run)
        save_group([(r.out, r.model, r.optimizer, r.checkpoint_meta()) for r in due])  # all of the stack's, or none
    emit(progress, "end")
