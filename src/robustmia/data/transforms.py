"""Training-time augmentation on whole batches of tensors, driven by an explicit generator.

Augmentations run on the batch after it is indexed from memory, so they cost one
gather, not a Python loop per image, and they are reproducible from the generator alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

def crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop after zero padding by ``padding`` pixels, then random horizontal flip.

    The CIFAR-10 augmentation of Madry et al. and of torchvision's
    ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``, per image.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h)).to(x.device)
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols).to(x.device)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def augment(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    if kind == "none":
        return x
    if kind == "crop-flip":
        return crop_flip(x, generator)
    raise ValueError(f"unknown augmentation {kind!r}")
