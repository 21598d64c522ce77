"""Evaluating a model on a set of images: accuracy and mean cross-entropy loss.

Evaluation always runs the model in eval mode (BatchNorm uses its running statistics and
is never updated) and restores the mode it found.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from robustmia.data.datasets import ImageSet


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


class Scores(NamedTuple):
    accuracy: float
    loss: float
    n: int


@torch.no_grad()
def logits_of(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """All logits of ``images`` (on the CPU), computed in eval mode, batch by batch."""
    device = model_device(model)
    with eval_mode(model):
        return torch.cat([model(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)])


def clean_scores(model: nn.Module, data: ImageSet, batch_size: int = 500) -> Scores:
    logits = logits_of(model, data.images, batch_size)
    loss = F.cross_entropy(logits, data.labels).item()
    accuracy = (logits.argmax(1) == data.labels).float().mean().item()
    return Scores(accuracy, loss, len(data))
