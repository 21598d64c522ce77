"""The training loop. Every objective (natural, adversarial, certified) runs through it, one model at a time.
Its one sibling, training.stacked's loop, trains K models of one recipe as one batched computation: it must be a
loop of its own because a step there is one forward and backward pass of all K (under vmap) with each model's own
batches, learning rates and momentum, but it shares this loop's per-run bookkeeping (RunSession: folder, split,
optimizer, log, checkpoints), its batches, augmentation, objectives and precision, and equals it to rounding.

Randomness is derived from ``(seed, epoch)`` alone: data order, augmentation and any
random start of an objective use a generator seeded per epoch, and the model's initial
weights come from the run's seed. A run resumed from an epoch's checkpoint therefore ends with
the same weights, bit for bit on the CPU, as one that was never interrupted.

Started by ``torchrun`` (``WORLD_SIZE`` > 1) the same loop trains data-parallel: every
process draws the same global batch and the same random numbers, keeps its own shard of
them (``training.distributed``), and DistributedDataParallel averages the gradients. Only
rank 0 writes the run folder. :class:`RunSession` is the per-run bookkeeping (folder,
optimizer, checkpoint, log) that ``training.stacked`` shares when it trains K models at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from robustmia.data.canaries import draw as draw_canaries, included
from robustmia.data.datasets import ImageSet, dataset_info, load_dataset
from robustmia.data.splits import load_split, make_split, save_split
from robustmia.data.transforms import augment
from robustmia.errors import UserError
from robustmia.io import atomic_write, read_jsonl, write_json
from robustmia.locks import OWNER_FILE, folder_lock
from robustmia.progress import Progress, emit
from robustmia.robust.evaluate import clean_accuracy
from robustmia.training import distributed
from robustmia.training.checkpoint import checkpoint_dir, load_checkpoint, load_weights, read_meta, save_checkpoint
from robustmia.training.config import DEFAULT_EPOCHS, TrainConfig
from robustmia.training.early_stop import EarlyStopping
from robustmia.training.methods import DP
from robustmia.training.private import dp_epsilon, make_private, noise_generator, poisson_batches, sample_rate
from robustmia.training.methods import objective as method_objective
from robustmia.training.objectives import StepContext, check_model, plain
from robustmia.models.fast import fit_to_members
from robustmia.models.inference import resolve_device
from robustmia.seeding import epoch_generator, generator_draw
from robustmia.training.run import CONFIG_FILE, LOG_FILE, MEMBERS_FILE, SPLIT_FILE, TIMING_FILE, build_initial_model, read_config_dict
from robustmia.training.schedule import learning_rate


RUN_FILES = (CONFIG_FILE, SPLIT_FILE, MEMBERS_FILE, LOG_FILE, TIMING_FILE, OWNER_FILE, ".checkpoint-new")


def _clear_half_made(out: Path) -> None:
    """A run folder that a crash left before its first checkpoint holds no training: the files robustmia
    wrote there are removed (under the folder's lock), so that the corrected command starts afresh."""
    if not (out / CONFIG_FILE).is_file() or checkpoint_dir(out) is not None:
        return
    others = [p.name for p in out.iterdir() if p.name not in RUN_FILES and not p.name.startswith(("early-stop", "."))]
    if others:
        raise UserError(f"{out} holds a run that never finished an epoch, and other files ({others[0]}); choose another --out")
    import shutil

    with folder_lock(out, "run the same command again"):
        for path in [out / name for name in RUN_FILES] + list(out.glob("early-stop*")):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _prepare_folder(out: Path, config: TrainConfig, resume: bool) -> bool:
    """Check ``out`` can take this run; return True if it already holds it (to resume)."""
    stored = read_config_dict(out)
    if stored is not None:
        if not resume:
            raise UserError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        try:
            previous = TrainConfig.model_validate(stored).identity()
        except Exception:
            raise UserError(f"{out / CONFIG_FILE} is not a valid run config; choose another --out") from None
        changed = sorted(k for k, v in config.identity().items() if previous.get(k) != v)
        if changed:
            raise UserError(f"cannot resume {out}: it was trained with different {', '.join(changed)}; drop those flags")
        return True
    if out.exists() and (not out.is_dir() or any(p.name != OWNER_FILE for p in out.iterdir())):
        raise UserError(f"{out} exists and is not an empty folder or a run; choose another --out")
    return False


def _training_set(config: TrainConfig, out: Path, continuing: bool, train_set: Optional[ImageSet], test_set: Optional[ImageSet],
                  members: Optional[ImageSet], num_classes: int):
    """``(split, members, canaries)``: the run's split (None for a model given its ``members``), the examples it
    trains on (the split's members, plus the canaries whose coins came up heads) and every canary (or None)."""
    if members is not None:
        return None, members, None
    split = load_split(out / SPLIT_FILE) if continuing else make_split(len(train_set), len(test_set), config.train_size, config.seed)
    members = train_set.subset(split.members)
    if config.canaries is None:
        return split, members, None
    candidates, coins = draw_canaries(config.canaries, train_set, split.pool_train, num_classes, config.seed)
    return split, ImageSet.concat(members, included(candidates, coins)), candidates


def _write_start(out: Path, config: TrainConfig, split: Any, members: ImageSet) -> None:
    """What a new run folder holds from the start: its split (or, for a model given its members, their ids) and config."""
    if split is not None:
        save_split(split, out / SPLIT_FILE)
    elif members.ids is not None:  # a model given its members (a reference model): which examples it trained on
        with atomic_write(out / MEMBERS_FILE) as f:
            np.savez(f, ids=members.ids.numpy())
    write_json(out / CONFIG_FILE, config.model_dump(mode="json"))


def _truncate_log(path: Path, epochs_done: int) -> None:
    """Keep the log's records up to the checkpoint the run resumes from (a half-written last line,
    from a process that died writing it, is dropped)."""
    if not path.exists():
        return
    records = read_jsonl(path, f"delete {path.parent} to train it again")
    keep = [r for r in records if isinstance(r.get("epoch"), int) and r["epoch"] <= epochs_done]
    with atomic_write(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in keep))


EpochHook = Callable[[torch.nn.Module, int, ImageSet, ImageSet], dict[str, Any]]


def autocast(config: TrainConfig, device: torch.device):
    """The training step's precision: bf16 autocast with ``amp: bf16``, else full precision.

    Under autocast the model's forward and backward passes (of the step and of the training-time
    attack) run in bf16. Kept in float32: the inputs, the adversarial perturbation, its sign step
    and its projection (so every training point is inside the eps-ball and [0, 1]), the
    cross-entropy (autocast computes it in float32), the optimizer and the weights; the certified
    bounds (they turn autocast off, since a bound rounded in bf16 is no longer sound); and all of
    evaluation: accuracies, attacks and membership signals never use bf16."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp == "bf16")


def prepare_model(model: torch.nn.Module, config: TrainConfig,
                  wrap: Optional[Callable[[torch.nn.Module], torch.nn.Module]] = None) -> torch.nn.Module:
    """The training view of the model: channels_last weights, then the data-parallel ``wrap``
    if any, then torch.compile when asked (compiling the DDP wrapper, as PyTorch recommends)."""
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    net = wrap(model) if wrap is not None else model
    return torch.compile(net) if config.compile else net


def prepare_batch(x: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if config.channels_last and x.dim() == 4 else x


@dataclass
class RunSession:
    """One run being trained: its folder, model, optimizer and where it stands."""

    config: TrainConfig
    out: Path
    members: ImageSet
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    step: int = 0
    record: dict[str, Any] = field(default_factory=dict)
    lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    private: Any = None  # the DP-SGD optimizer around ``optimizer`` (training.private), for DP methods
    canaries: Optional[ImageSet] = None  # every candidate of a one-run DP audit, included or not (data.canaries)
    planned: Optional[float] = None  # a DP run's size as fixed before the canaries' coins fall (see accounted_size)

    @property
    def accounted_size(self) -> float:
        """The training-set size a DP method's sampling rate, steps and accountant are computed from: the members, and
        for a run with canaries its members plus half the canaries (their expected number), fixed before the coins
        fall: a one-run audit's hypothesis test assumes a mechanism whose settings do not depend on the coins. Other
        methods train on what they have."""
        return self.planned if self.planned is not None and self.config.method in DP else len(self.members)

    def release(self) -> None:
        """Let go of the run folder's lock (the end of training, or a failure)."""
        self.lock.close()

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.accounted_size / self.config.batch_size)

    @property
    def total_steps(self) -> int:
        return self.config.iterations or (self.config.epochs or DEFAULT_EPOCHS) * self.steps_per_epoch

    @property
    def n_epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)

    @property
    def done(self) -> bool:
        return self.epoch >= self.n_epochs

    def lr(self) -> float:
        return learning_rate(self.config, self.epoch, self.step, self.total_steps)

    def batches(self) -> tuple[torch.Generator, list[torch.Tensor]]:
        """This epoch's generator, and the index batches it still trains on (the step budget may end it early)."""
        generator = epoch_generator(self.config.seed, self.epoch)
        left = max(0, self.total_steps - self.step)
        if self.config.method in DP:  # Poisson sampling, as the privacy accountant assumes
            q = sample_rate(self.config, self.accounted_size)
            return generator, poisson_batches(len(self.members), q, min(self.steps_per_epoch, left), generator)
        order = torch.randperm(len(self.members), generator=generator)
        chunks = list(order.split(self.config.batch_size))
        return generator, chunks[:left]

    @classmethod
    def open(cls, config: TrainConfig, out: Path, *, resume: bool, train_set: ImageSet, test_set: ImageSet,
             members: Optional[ImageSet], device: torch.device, writer: bool = True) -> "RunSession":
        """Check ``out``, make the split (unless ``members`` is given: reference models train on
        their own subsets and their folders hold no split), write the config, build the model
        and optimizer, and load the last checkpoint of an interrupted run. Only a ``writer``
        writes; the other ranks of a data-parallel run wait for it in between."""
        info = dataset_info(config.dataset, config.data_dir)
        model = build_initial_model(config, info)  # also checks the model fits the data
        check_model(config.method, model, info.shape)
        if writer and out.is_dir():
            _clear_half_made(out)
        distributed.barrier()  # the other ranks look at the folder once rank 0 has cleared it
        continuing = _prepare_folder(out, config, resume)
        split, members, candidates = _training_set(config, out, continuing, train_set, test_set, members, info.num_classes)
        if not continuing:  # data-dependent layers (fast-cnn's whitening) fit the run's own members, before the first step
            fit_to_members(model, members.images)
        ckpt = checkpoint_dir(out) if continuing else None
        state = load_checkpoint(ckpt) if ckpt is not None else None  # a damaged checkpoint is refused before anything is written
        if state is not None:
            load_weights(model, state[0], ckpt)
        distributed.barrier()  # every rank has looked at the folder before rank 0 writes
        lock = contextlib.ExitStack()
        if writer:  # one process writes a run folder: a second one is refused here, before it writes
            lock.enter_context(folder_lock(out))
        if ckpt is not None and checkpoint_dir(out) is not None and read_meta(checkpoint_dir(out))["sha256"] != state[2]["sha256"]:
            ckpt = checkpoint_dir(out)  # another process checkpointed between the reading and the lock
            state = load_checkpoint(ckpt)
            load_weights(model, state[0], ckpt)
        if writer and not continuing:
            _write_start(out, config, split, members)
        model.to(device)
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay, nesterov=config.nesterov)
        planned = None if candidates is None else len(split.members) + len(candidates) / 2
        session = cls(config, out, members, model, optimizer, lock=lock, canaries=candidates, planned=planned)
        if state is not None:
            _, optim_state, meta = state
            try:
                optimizer.load_state_dict(optim_state)
            except (ValueError, KeyError) as e:
                lock.close()
                raise UserError(f"{ckpt}: the optimizer state does not fit the model ({e}); re-train into a new --out") from None
            session.epoch, session.step, session.record = meta["epoch"], meta["step"], meta.get("metrics", {})
        if writer:
            _truncate_log(out / LOG_FILE, session.epoch)
            _truncate_log(out / TIMING_FILE, session.epoch)
        distributed.barrier()
        return session

    def checkpoint_meta(self, **extra: Any) -> dict[str, Any]:
        c = self.config
        return {"config": c.model_dump(mode="json"), "seed": c.seed, "epoch": self.epoch, "step": self.step, "metrics": self.record,
                **extra}

    def save_checkpoint(self, **extra: Any) -> None:
        """Checkpoint the model and optimizer where the run stands (``extra``: more metadata)."""
        save_checkpoint(self.out, self.model, self.optimizer, self.checkpoint_meta(**extra))

    @property
    def checkpoint_due(self) -> bool:
        return self._due(self.config.checkpoint_every)

    def _due(self, every: int) -> bool:
        return every > 0 and (self.epoch % every == 0 or self.done)

    def end_epoch(self, test_set: Optional[ImageSet], *, lr: float, loss_sum: float, correct: int, seen: int, started: float,
                  epoch_hook: Optional[EpochHook] = None, checkpoint: bool = True) -> dict[str, Any]:
        """Log the epoch (scoring the test split when due) and save the checkpoint when due (the writer's part;
        without ``checkpoint``, the caller checkpoints: a stack checkpoints its models as a group)."""
        self.epoch += 1
        if seen and not math.isfinite(loss_sum):
            raise UserError(f"training {self.out} diverged in epoch {self.epoch} (the training loss is {loss_sum / seen}); "
                            "train again with a lower lr, into a new --out")
        # an epoch may take no example at all: DP-SGD's Poisson batches can all be empty at small sample rates
        record = {"epoch": self.epoch, "step": self.step, "lr": lr, "train_loss": loss_sum / seen if seen else None,
                  "train_accuracy": correct / seen if seen else None}
        if test_set is not None and self._due(self.config.eval_every):
            test = clean_accuracy(self.model, test_set, self.config.eval_batch_size)
            record.update(test_loss=test.loss, test_accuracy=test.accuracy)
        seconds = round(time.perf_counter() - started, 3)
        if epoch_hook is not None:
            record.update(epoch_hook(self.model, self.epoch, self.members, test_set))
        with open(self.out / LOG_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        # wall-clock time apart from the log, so that the log (and a study's results.json) is a
        # function of the config, seed and thread count alone
        with open(self.out / TIMING_FILE, "a") as f:
            f.write(json.dumps({"epoch": self.epoch, "seconds": seconds}) + "\n")
        self.record = record
        if checkpoint and self.checkpoint_due:
            self.save_checkpoint()
        return {**record, "seconds": seconds}


@torch.no_grad()
def lookahead_start(optimizer: torch.optim.Optimizer) -> None:
    """Lookahead's slow weights (Zhang et al. 2019), kept in the optimizer's state (so checkpoints hold
    them), start as the weights before the first step."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if "lookahead" not in state:
                state["lookahead"] = p.detach().clone()


@torch.no_grad()
def lookahead_sync(optimizer: torch.optim.Optimizer, alpha: float) -> None:
    """The slow weights move ``alpha`` of the way to the fast ones; the fast ones restart from them."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            slow = optimizer.state[p]["lookahead"]
            slow.add_(p.detach() - slow, alpha=alpha)
            p.copy_(slow)


def _train_epoch(run: RunSession, net: torch.nn.Module, objective: Any, x_all: torch.Tensor, y_all: torch.Tensor, kind: str,
                 group: Optional[distributed.ProcessGroup], dev: torch.device, progress: Optional[Progress]):
    """One epoch's steps; returns the last lr, the summed loss, the correct count (on this rank) and the examples seen."""
    config = run.config
    generator, batches = run.batches()
    run.model.train()
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    seen, lr = 0, run.lr()
    optimizer = run.private or run.optimizer
    if run.private is not None:
        run.private.generator = noise_generator(generator, dev)
    for idx in batches:
        lr = run.lr()
        for g in run.optimizer.param_groups:
            g["lr"] = lr
        # an empty Poisson sample (DP-SGD) still takes its step, noise alone, as the accountant assumes
        idx = idx.to(dev)
        x, y = prepare_batch(augment(x_all[idx], kind, generator), config), y_all[idx]
        draw = generator_draw(generator)
        if group is not None:  # every rank draws the whole batch's numbers and keeps its shard's
            rows = group.shard(len(y))
            x, y, draw = x[rows], y[rows], group.shard_draw(draw, len(idx))
        with autocast(config, dev):
            out_step = objective(net, x, y, config, StepContext(generator, run.step, run.total_steps, draw))
        # the mean over the global batch: DDP averages the ranks' gradients, so each rank
        # weighs its shard's sum by world / global batch size
        scale = group.world / len(idx) if group is not None else 1 / max(len(idx), 1)
        optimizer.zero_grad(set_to_none=True)
        (out_step.losses.sum() * scale).backward()
        if config.lookahead:
            lookahead_start(run.optimizer)
        optimizer.step()
        loss_sum += out_step.losses.detach().sum()
        correct += (out_step.logits.detach().argmax(1) == y).sum()
        seen += len(idx)
        run.step += 1
        if config.lookahead and (run.step % config.lookahead == 0 or run.step == run.total_steps):
            lookahead_sync(run.optimizer, config.lookahead_alpha)  # the last step ends on the slow weights
        emit(progress, "advance", steps=1)
    return lr, loss_sum, correct, seen


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    device: str = "auto",
    download: bool = False,
    progress: Optional[Progress] = None,
    members: Optional[ImageSet] = None,
    epoch_hook: Optional[EpochHook] = None,
    name: Optional[str] = None,
) -> dict[str, Any]:
    """Train ``config`` into the run folder ``out``; return the last epoch's record.

    The training set is the split's members (drawn from the config's ``train_size`` and
    seed and saved as ``split.npz``), unless ``members`` is given: reference and shadow
    models train on their own subsets that way, and their folders hold no split.
    ``epoch_hook(model, epoch, members, test)`` may add figures to each epoch's record
    (the study's privacy-over-training curves). ``name`` says in progress lines what trains (default:
    the folder's name). Under ``torchrun`` this is data-parallel."""
    out = Path(out)
    group = distributed.ProcessGroup.from_env(device)
    dev = group.device if group is not None else resolve_device(device)
    writer = group is None or group.rank == 0
    objective = method_objective(config.method)
    # a model given its members that logs no test metrics (a reference model) needs no dataset
    needs_data = members is None or config.eval_every > 0 or epoch_hook is not None or config.early_stop
    train_set, test_set = load_dataset(config.dataset, config.data_dir, download) if needs_data else (None, None)
    run = RunSession.open(config, out, resume=resume, train_set=train_set, test_set=test_set, members=members, device=dev, writer=writer)
    try:
        early = EarlyStopping(config, out, train_set, run.members, run.canaries) if config.early_stop and writer else None
        _run_epochs(run, objective, test_set, group, dev, writer, progress, _hooks(run, epoch_hook, early), early, name or out.name)
    finally:
        run.release()
        if group is not None:
            group.close()
    return run.record


def _hooks(run: RunSession, epoch_hook: Optional[EpochHook], early: Optional[EarlyStopping]) -> Optional[EpochHook]:
    """One hook adding to each epoch's record: the caller's, DP-SGD's (epsilon, delta), early stopping's."""
    c = run.config
    dp = (lambda *_: {"dp_epsilon": dp_epsilon(c, run.accounted_size, run.step), "dp_delta": c.dp_delta}) if c.method in DP else None
    hooks = [h for h in (epoch_hook, dp, early.hook if early is not None else None) if h is not None]
    if not hooks:
        return None
    return lambda *args: {k: v for h in hooks for k, v in h(*args).items()}


def _without_hooks(view: torch.nn.Module, hook: EpochHook) -> EpochHook:
    def run_quietly(*args):
        with plain(view):
            return hook(*args)

    return run_quietly


def _run_epochs(run: RunSession, objective: Any, test_set: Optional[ImageSet], group: Optional[distributed.ProcessGroup],
                dev: torch.device, writer: bool, progress: Optional[Progress], epoch_hook: Optional[EpochHook],
                early: Optional[EarlyStopping] = None, name: str = "") -> None:
    """Train ``run`` to its end, epoch by epoch: steps, then (the writer's part) the log, checkpoint and
    early stopping's best weights; an early-stopped run ends with those."""
    config = run.config
    if group is not None:
        group.check_batches(len(run.members), config.batch_size)
        if config.method in DP:
            raise UserError(f"{config.method} (DP-SGD) trains in one process: run it without torchrun")
    if config.method in DP:
        net, run.private = make_private(run.model, run.optimizer, config, run.accounted_size)
        if epoch_hook is not None:  # its evaluations and attacks run with opacus' hooks off
            epoch_hook = _without_hooks(net, epoch_hook)
    else:
        net = prepare_model(run.model, config, group.wrap if group is not None else None)
    kind = config.resolved_augment(dataset_info(config.dataset, config.data_dir).augment)
    x_all, y_all = run.members.images.to(dev), run.members.labels.to(dev)
    if writer:
        emit(progress, "start", task=f"train {name} ({config.model}, {config.method})", total=run.total_steps, completed=run.step)
    while not run.done:
        started = time.perf_counter()
        lr, loss_sum, correct, seen = _train_epoch(run, net, objective, x_all, y_all, kind, group, dev,
                                                   progress if writer else None)
        if group is not None:
            loss_sum, correct = group.sum(loss_sum), group.sum(correct)
        if writer:
            record = run.end_epoch(test_set, lr=lr, loss_sum=loss_sum.item(), correct=correct.item(), seen=seen,
                                   started=started, epoch_hook=epoch_hook)
            emit(progress, "record", task=name, epochs=run.n_epochs, **record)
        else:
            run.epoch += 1
    if early is not None:
        early.finish(run)
    if writer:
        emit(progress, "end")
