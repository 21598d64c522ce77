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

__all__ = ["DATASETS", "DatasetInfo", "ImageSet", "dataset_info", "load_dataset"]


@dataclass
class ImageSet:
    images: torch.Tensor  # float32 (N, C, H, W) in [0, 1]
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices) -> "ImageSet":
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx])

    @staticmethod
    def concat(*parts: "ImageSet") -> "ImageSet":
        return ImageSet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


def load_dataset(
    name: str, data_dir: Optional[str | os.PathLike] = None, download: bool = False
) -> tuple[ImageSet, ImageSet]:
    """Load ``name`` and return ``(train, test)``."""
    return dataset_module(name).load(resolve_root(name, data_dir), download)


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
