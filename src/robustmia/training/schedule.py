"""Piecewise-constant learning rates.

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
