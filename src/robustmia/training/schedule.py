"""Learning-rate schedules: piecewise constant (the paper's recipes), one-cycle and linear decay (fast recipes).

``lr_drops`` is a list of ``(boundary, lr)`` pairs: from ``boundary`` on (an epoch or an
iteration count, by ``lr_unit``) the rate is ``lr``. Madry et al.'s CIFAR-10 schedule is
``lr=0.1, lr_drops=[(40000, 0.01), (60000, 0.001)], lr_unit="iteration"``.
"""

from __future__ import annotations

from typing import Sequence


def piecewise_lr(base: float, drops: Sequence[tuple[int, float]], t: int) -> float:
    lr = base
    for boundary, value in drops:
        if t >= boundary:
            lr = value
    return lr


def parse_drops(text: str) -> list[tuple[int, float]]:
    """``"40000:0.01,60000:0.001"`` -> ``[(40000, 0.01), (60000, 0.001)]``."""
    drops = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        boundary, sep, lr = item.partition(":")
        if not sep:
            raise ValueError(f"lr drop {item!r} is not BOUNDARY:LR (e.g. 40000:0.01)")
        try:
            drops.append((int(boundary), float(lr)))
        except ValueError:
            raise ValueError(f"lr drop {item!r} is not BOUNDARY:LR (e.g. 40000:0.01)") from None
    return drops


def learning_rate(config, epoch: int, step: int, total_steps: int) -> float:
    """The lr of the step after ``step`` steps (in ``epoch``): ``config.lr_schedule`` of a TrainConfig."""
    if config.lr_schedule == "piecewise":
        return piecewise_lr(config.lr, config.lr_drops, epoch if config.lr_unit == "epoch" else step)
    t = step / max(total_steps, 1)
    if config.lr_schedule == "onecycle" and t < config.lr_warmup:
        return config.lr * (step + 1) / max(config.lr_warmup * total_steps, 1)
    start = config.lr_warmup if config.lr_schedule == "onecycle" else 0.0
    return config.lr * max(0.0, 1 - (t - start) / (1 - start))
