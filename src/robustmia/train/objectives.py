"""Training objectives: one function each, all plugged into the one loop in ``loop.py``.

An objective takes the model (in train mode), a batch of pixels ``x`` in [0, 1] with labels
``y``, the run's config and a generator for any randomness it needs, and returns the loss
to minimise and the logits to score training accuracy on. Adversarial and certified
objectives compute their perturbed inputs or bounds inside, and nothing else changes.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class StepOutput(NamedTuple):
    loss: torch.Tensor
    logits: torch.Tensor


Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor, Any, torch.Generator], StepOutput]


def natural(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Any, generator: torch.Generator) -> StepOutput:
    logits = model(x)
    return StepOutput(F.cross_entropy(logits, y), logits)


OBJECTIVES: dict[str, Objective] = {
    "natural": natural,
}
