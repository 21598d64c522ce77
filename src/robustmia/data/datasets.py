"""Loading a dataset: a train and a test :class:`ImageSet` of float32 images in [0, 1]
(N, C, H, W) and int64 labels. Which datasets exist and how each is read: robustmia.data.catalog
and its modules in ``data/sets/``.

Normalisation is not applied here: it lives inside each model, so that an epsilon means
the same thing everywhere (pixel space).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from robustmia.data.catalog import DATASETS, DatasetInfo, dataset_info, dataset_module, resolve_root
from robustmia.errors import UserError

__all__ = ["DATASETS", "DatasetInfo", "ImageSet", "dataset_info", "example_ids", "load_dataset"]


@dataclass
class ImageSet:
    """Images and labels, and each example's identity ``ids`` (which split, which index:
    :func:`example_ids`): what stays attached to an example through subsets and
    concatenations, so that its PGD random start and cached PGD point are its own."""

    images: torch.Tensor  # float32 (N, C, H, W) in [0, 1]
    labels: torch.Tensor  # int64 (N,)
    ids: Optional[torch.Tensor] = None  # int64 (N,), or None for images of unknown origin

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices) -> "ImageSet":
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx], None if self.ids is None else self.ids[idx])

    @staticmethod
    def concat(*parts: "ImageSet") -> "ImageSet":
        ids = None if any(p.ids is None for p in parts) else torch.cat([p.ids for p in parts])
        return ImageSet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]), ids)


SPLIT_BITS = 40  # an example's id: its split (0 train, 1 test) above its index in the split


def example_ids(n: int, split: int) -> torch.Tensor:
    return (split << SPLIT_BITS) + torch.arange(n, dtype=torch.long)


def load_dataset(
    name: str, data_dir: Optional[str | os.PathLike] = None, download: bool = False
) -> tuple[ImageSet, ImageSet]:
    """Load ``name`` and return ``(train, test)``, every example carrying its id."""
    train, test = dataset_module(name).load(resolve_root(name, data_dir), download)
    train.ids, test.ids = example_ids(len(train), 0), example_ids(len(test), 1)
    return train, test


def from_uint8(images: np.ndarray, labels: np.ndarray) -> ImageSet:
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)
    return ImageSet(x, torch.from_numpy(np.asarray(labels, dtype=np.int64)))


def torchvision_download(cls_name: str, root: Path, **kwargs) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    if cls_name == "CIFAR10":
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    else:
        cls(str(root), download=True, **kwargs)


def download_with(root: Path, fetch: Callable[[], None]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    try:
        fetch()
    except Exception as e:
        raise UserError(f"download into {root} failed ({e}); check the network, or fetch the files by hand") from None
