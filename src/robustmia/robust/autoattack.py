"""AutoAttack (Croce & Hein, 2020): the authors' own code where it is installed, else torchattacks'.

- ``pyautoattack`` is fra31's AutoAttack packaged on PyPI (RobustBench requires it, so the
  ``robustbench`` extra brings it); when it imports, it runs, and the evaluation records it;
- otherwise torchattacks' re-implementation, an optional test dependency: torchattacks pins an old
  ``requests``, so install it without its dependencies: ``pip install --no-deps torchattacks==3.5.1``.

Both run the standard L-infinity ensemble (APGD-CE, APGD-T, FAB-T, Square); the tests check that they
give the same robust accuracy, within one example, on a fixed batch.
"""

from __future__ import annotations

import importlib.metadata

import torch
from torch import nn

from robustmia.errors import UserError

INSTALL = ("AutoAttack needs pyautoattack (Croce & Hein's code: pip install pyautoattack, or the robustbench extra) or torchattacks "
           "(pip install --no-deps torchattacks==3.5.1)")


def implementation() -> str:
    """Which AutoAttack runs here, with its version: ``pyautoattack X`` or ``torchattacks X``."""
    for package in ("pyautoattack", "torchattacks"):
        try:
            __import__(package)
        except ImportError:
            continue
        return f"{package} {importlib.metadata.version(package)}"
    raise UserError(INSTALL)


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, num_classes: int, seed: int = 0,
               use: str = "") -> torch.Tensor:
    """Standard L-infinity AutoAttack, same call shape as :func:`pgd`; ``use`` ``pyautoattack`` or
    ``torchattacks`` picks one (default: :func:`implementation`'s)."""
    chosen = (use or implementation()).split()[0]
    if chosen == "pyautoattack":
        from pyautoattack import AutoAttack

        attack = AutoAttack(model, eps=eps, norm="Linf", version="standard", seed=seed, device=x.device)
        attack.verbose = False
        x_adv, _ = attack.run_standard_evaluation(x, y, batch_size=len(x))  # (the points, and their predicted labels)
        return x_adv
    try:
        import torchattacks
    except ImportError:
        raise UserError(INSTALL) from None
    attack = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=num_classes, seed=seed)
    return attack(x, y)
