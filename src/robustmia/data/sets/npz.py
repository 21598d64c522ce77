"""Arrays of your own: ``root/train.npz`` and ``root/test.npz``, each with ``images`` (N, H, W, C)
or (N, C, H, W), uint8 in 0..255 or floats in [0, 1], and integer ``labels`` (N,). Read with
``allow_pickle=False``. A model robustmia trains on them starts with a generic normalisation
(mean 0.5, std 0.25 per channel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from robustmia.data.catalog import DatasetInfo
from robustmia.errors import UserError

ORDER = 7
INFO = DatasetInfo("npz", (3, 32, 32), 0, (0.5,) * 3, (0.25,) * 3, "none",
                   "your arrays: root/train.npz and root/test.npz with images (N,H,W,C or N,C,H,W) and labels (N,)")


def missing(root: Path) -> Optional[str]:
    return None if all((root / f"{s}.npz").is_file() for s in ("train", "test")) else "expected train.npz and test.npz"


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images as uint8-scaled float32 (N, C, H, W) in [0, 1], labels int64), checked."""
    from robustmia.io import read_npz

    arrays = read_npz(path, "the npz dataset file", "save images and labels with numpy.savez")
    missing = [k for k in ("images", "labels") if k not in arrays]
    if missing:
        raise UserError(f"{path} lacks the array {missing[0]!r}; save images and labels with numpy.savez")
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 4 or labels.shape != (len(images),) or len(images) == 0:
        raise UserError(f"{path}: images must be (N, H, W, C) or (N, C, H, W) and labels (N,), got {images.shape} and {labels.shape}")
    if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.shape[1] not in (1, 3):
        raise UserError(f"{path}: images must have 1 or 3 channels, (N, H, W, C) or (N, C, H, W), got {images.shape}")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255
    elif not (np.issubdtype(images.dtype, np.floating) and np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
        raise UserError(f"{path}: images must be uint8 (0..255) or finite floats in [0, 1]")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise UserError(f"{path}: labels must be non-negative integers")
    return images.astype(np.float32), labels.astype(np.int64)


def sizes(root: Path) -> Optional[tuple[int, int]]:
    try:
        counts = []
        for split in ("train", "test"):
            with np.load(root / f"{split}.npz", allow_pickle=False) as z:
                counts.append(len(z["labels"]))
        return counts[0], counts[1]
    except Exception:
        return None  # the loader says what is wrong


def info(root: Path, name: str) -> DatasetInfo:
    images, labels = _read(root / "train.npz")
    c, h, w = images.shape[1:]
    return DatasetInfo(name, (c, h, w), _classes(labels, root / "train.npz"), (0.5,) * c, (0.25,) * c, "none", f"arrays of {root}")


def _classes(labels: np.ndarray, path: Path) -> int:
    """The number of classes the training labels span (at least two)."""
    if len(np.unique(labels)) < 2:
        raise UserError(f"{path}: every label is {int(labels[0])}; a classifier needs at least two classes")
    return int(labels.max()) + 1


def load(root: Path, download: bool, name: str = "npz"):
    import torch

    from robustmia.data.datasets import ImageSet

    if missing(root) is not None:
        raise UserError(f"npz data not found in {root} ({missing(root)}); pass --data-dir to point at it")
    train, test = _read(root / "train.npz"), _read(root / "test.npz")
    if train[0].shape[1:] != test[0].shape[1:]:
        raise UserError(f"{root}: train and test images differ in shape ({train[0].shape[1:]} vs {test[0].shape[1:]})")
    classes = _classes(train[1], root / "train.npz")
    if test[1].max() >= classes:
        raise UserError(f"{root / 'test.npz'} has label {int(test[1].max())}, but the training labels go up to {classes - 1}; "
                        "the test split must use the training classes")
    return tuple(ImageSet(torch.from_numpy(x), torch.from_numpy(y)) for x, y in (train, test))
