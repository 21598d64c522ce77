"""AutoAttack (Croce & Hein, 2020) through torchattacks, an optional extra.

torchattacks pins an old ``requests``; install it without its dependencies:
``pip install --no-deps torchattacks==3.5.1``.
"""

from __future__ import annotations

import torch
from torch import nn

from robustmia.errors import UserError


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, num_classes: int, seed: int = 0) -> torch.Tensor:
    """Standard L-infinity AutoAttack (APGD-CE, APGD-T, FAB-T, Square), same call shape as :func:`pgd`."""
    try:
        import torchattacks
    except ImportError:
        raise UserError("AutoAttack needs torchattacks: pip install --no-deps torchattacks==3.5.1") from None
    attack = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=num_classes, seed=seed)
    return attack(x, y)
