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
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except KeyError as e:
        raise UserError(f"{path} lacks the array {e}; save images and labels with numpy.savez") from None
    except Exception as e:
        raise UserError(f"{path} is not a readable .npz of plain arrays ({e}); save it with numpy.savez") from None
    if images.ndim != 4 or labels.shape != (len(images),) or len(images) == 0:
        raise UserError(f"{path}: images must be (N, H, W, C) or (N, C, H, W) and labels (N,), got {images.shape} and {labels.shape}")
    if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
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
    return DatasetInfo(name, (c, h, w), int(labels.max()) + 1, (0.5,) * c, (0.25,) * c, "none", f"arrays of {root}")


def load(root: Path, download: bool, name: str = "npz"):
    import torch

    from robustmia.data.datasets import ImageSet

    if missing(root) is not None:
        raise UserError(f"npz data not found in {root} ({missing(root)}); pass --data-dir to point at it")
    train, test = _read(root / "train.npz"), _read(root / "test.npz")
    if train[0].shape[1:] != test[0].shape[1:]:
        raise UserError(f"{root}: train and test images differ in shape ({train[0].shape[1:]} vs {test[0].shape[1:]})")
    return tuple(ImageSet(torch.from_numpy(x), torch.from_numpy(y)) for x, y in (train, test))
