"""Loading a dataset: a train and a test :class:`ImageSet` of float32 images in [0, 1]
(N, C, H, W) and int64 labels. Which datasets exist and how each is read: robustmia.data.catalog
and its modules in ``data/sets/``.

Normalisation is not applied here: it lives inside each model, so that an epsilon means
the same thing everywhere (pixel space).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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
    module, root = dataset_module(name), resolve_root(name, data_dir)
    train, test = module.load(root, download, name) if hasattr(module, "info") else module.load(root, download)
    train.ids, test.ids = example_ids(len(train), 0), example_ids(len(test), 1)
    return train, test


def from_uint8(images: np.ndarray, labels: np.ndarray) -> ImageSet:
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)
    return ImageSet(x, torch.from_numpy(np.asarray(labels, dtype=np.int64)))


def torchvision_download(cls_name: str, root: Path) -> None:
    """Fetch both splits of a dataset through torchvision into ``root`` (only with ``--download``)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    for split in (True, False):
        if cls_name == "SVHN":
            cls(str(root), split="train" if split else "test", download=True)
        else:
            cls(str(root), train=split, download=True)


def ensure_present(name: str, root: Path, download: bool, torchvision_name: str) -> None:
    """Fetch the dataset through torchvision if its files are missing and ``download`` is set;
    then, if they are still missing, one line saying what is missing and how to fix it."""
    from robustmia.data.catalog import missing_message

    if dataset_module(name).missing(root) is not None and download:
        root.mkdir(parents=True, exist_ok=True)
        try:
            torchvision_download(torchvision_name, root)
        except Exception as e:
            raise UserError(f"download into {root} failed ({e}); check the network, or fetch the files by hand") from None
    message = missing_message(name, root)
    if message is not None:
        raise UserError(message)


class _ArrayUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain containers, refuses every other class."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
        ("__builtin__", "bytes"),  # ... and empty bytes
        ("builtins", "bytes"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def read_pickled_batch(path: Path, label_key: str, num_classes: int, title: str) -> tuple[np.ndarray, np.ndarray]:
    """``(data (N, 3, 32, 32) uint8, labels)`` of a CIFAR-style python batch, read with an unpickler
    that can build nothing but numpy arrays and plain containers."""
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="latin1").load()
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except Exception as e:  # any damage to the file is the user's to fix
        raise UserError(f"cannot read {title} batch {path}: {e}; re-download it with --download") from None
    if len(labels) != len(data) or len(labels) == 0 or labels.min() < 0 or labels.max() >= num_classes:
        raise UserError(f"{title} batch {path} has no or inconsistent data/labels; re-download it with --download")
    return data, labels
