"""Training-time augmentation on whole batches of tensors, driven by an explicit generator.

Augmentations run on the batch after it is indexed from memory, so they cost one
gather, not a Python loop per image, and they are reproducible from the generator alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

def crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4, mode: str = "constant") -> torch.Tensor:
    """Random crop after padding by ``padding`` pixels (zeros, or ``mode="reflect"``), then random
    horizontal flip, per image, on the batch's device.

    With the defaults: the CIFAR-10 augmentation of Madry et al. and of torchvision's
    ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``; with ``padding=2, mode="reflect"``:
    airbench's flip and translate by up to 2 pixels.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding), mode=mode)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h)).to(x.device)
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols).to(x.device)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


AUGMENTATIONS = ("none", "crop-flip", "flip-translate")


def augment(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """One of :data:`AUGMENTATIONS`: ``crop-flip`` (pad 4 with zeros, crop, flip), ``flip-translate`` (reflect-pad 2, crop, flip)."""
    if kind == "none" or len(x) == 0:
        return x
    if kind == "crop-flip":
        return crop_flip(x, generator)
    if kind == "flip-translate":
        return crop_flip(x, generator, padding=2, mode="reflect")
    raise ValueError(f"unknown augmentation {kind!r}")
