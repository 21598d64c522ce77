"""The one training loop. Every objective (natural, adversarial, certified) runs through it.

Randomness is derived from ``(seed, epoch)`` alone: data order, augmentation and any
random start of an objective use a generator seeded per epoch, and the model's initial
weights come from the seed. A run resumed from an epoch's checkpoint therefore ends with
the same weights, bit for bit on the CPU, as one that was never interrupted.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from robustmia.data.datasets import ImageSet, dataset_info, load_dataset
from robustmia.data.splits import load_split, make_split, save_split
from robustmia.data.transforms import augment
from robustmia.errors import UserError
from robustmia.io import atomic_write, write_json
from robustmia.progress import Progress, emit
from robustmia.robust.evaluate import clean_scores
from robustmia.train.checkpoint import checkpoint_dir, load_checkpoint, load_weights, save_checkpoint
from robustmia.train.config import DEFAULT_EPOCHS, TrainConfig
from robustmia.train.objectives import OBJECTIVES, StepContext, check_model
from robustmia.train.run import CONFIG_FILE, LOG_FILE, SPLIT_FILE, build_initial_model, read_config_dict, resolve_device
from robustmia.train.schedule import piecewise_lr


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


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
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not an empty folder or a run; choose another --out")
    return False


def _truncate_log(path: Path, epochs_done: int) -> None:
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epochs_done]
    with atomic_write(path, "w") as f:
        f.write("".join(line + "\n" for line in keep))


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    device: str = "auto",
    download: bool = False,
    progress: Optional[Progress] = None,
    members: Optional[ImageSet] = None,
    epoch_hook: Optional[Callable[[torch.nn.Module, int, ImageSet, ImageSet], dict[str, Any]]] = None,
) -> dict[str, Any]:
    """Train ``config`` into the run folder ``out``; return the last epoch's record.

    The training set is the split's members (drawn from the config's ``train_size`` and
    seed and saved as ``split.npz``), unless ``members`` is given: reference and shadow
    models train on their own subsets that way, and their folders hold no split.
    ``epoch_hook(model, epoch, members, test)`` may add figures to each epoch's record
    (the study's privacy-over-training curves)."""
    out = Path(out)
    dev = resolve_device(device)
    info = dataset_info(config.dataset)
    objective = OBJECTIVES[config.method]
    model = build_initial_model(config, info)  # also checks the model fits the data
    check_model(config.method, model, info.shape)
    train_set, test_set = load_dataset(config.dataset, config.data_dir, download)
    continuing = _prepare_folder(out, config, resume)

    split = None
    if members is None:
        if continuing:
            split = load_split(out / SPLIT_FILE)
        else:
            split = make_split(len(train_set), len(test_set), config.train_size, config.seed)
        members = train_set.subset(split.members)
    if not continuing:
        out.mkdir(parents=True, exist_ok=True)
        if split is not None:
            save_split(split, out / SPLIT_FILE)
        write_json(out / CONFIG_FILE, config.model_dump(mode="json"))
    kind = config.resolved_augment(info.augment)

    model.to(dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(members) / config.batch_size)
    total_steps = config.iterations or (config.epochs or DEFAULT_EPOCHS) * steps_per_epoch
    n_epochs = math.ceil(total_steps / steps_per_epoch)
    epoch, step, record = 0, 0, {}

    ckpt = checkpoint_dir(out) if continuing else None
    if ckpt is not None:
        weights, optim_state, meta = load_checkpoint(ckpt)
        load_weights(model, weights, ckpt)
        optimizer.load_state_dict(optim_state)
        epoch, step, record = meta["epoch"], meta["step"], meta.get("metrics", {})
    _truncate_log(out / LOG_FILE, epoch)

    x_all, y_all = members.images.to(dev), members.labels.to(dev)
    emit(progress, "start", task=f"train {config.model} ({config.method})", total=total_steps, completed=step)
    while epoch < n_epochs:
        started = time.perf_counter()
        generator = epoch_generator(config.seed, epoch)
        order = torch.randperm(len(members), generator=generator).to(dev)
        model.train()
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        for start in range(0, len(members), config.batch_size):
            if step >= total_steps:
                break
            lr = piecewise_lr(config.lr, config.lr_drops, epoch if config.lr_unit == "epoch" else step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            idx = order[start : start + config.batch_size]
            x, y = augment(x_all[idx], kind, generator), y_all[idx]
            out_step = objective(model, x, y, config, StepContext(generator, step, total_steps))
            optimizer.zero_grad(set_to_none=True)
            out_step.loss.backward()
            optimizer.step()
            loss_sum += out_step.loss.detach() * len(y)
            correct += (out_step.logits.detach().argmax(1) == y).sum()
            seen += len(y)
            step += 1
            emit(progress, "advance", steps=1)
        epoch += 1
        test = clean_scores(model, test_set, config.eval_batch_size)
        record = {
            "epoch": epoch,
            "step": step,
            "lr": lr,
            "train_loss": loss_sum.item() / seen,
            "train_accuracy": correct.item() / seen,
            "test_loss": test.loss,
            "test_accuracy": test.accuracy,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if epoch_hook is not None:
            record.update(epoch_hook(model, epoch, members, test_set))
        with open(out / LOG_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        save_checkpoint(
            out, model, optimizer,
            {"config": config.model_dump(mode="json"), "seed": config.seed, "epoch": epoch, "step": step, "metrics": record},
        )
        emit(progress, "record", **record)
    emit(progress, "end")
    return record
