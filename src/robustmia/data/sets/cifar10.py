"""CIFAR-10, the python-pickle batches (``cifar-10-batches-py/``).

Any subset of ``data_batch_1..5`` is read as found (no checksum), so a folder holding only
``data_batch_1`` and ``test_batch`` works unchanged. The pickles are read with an
unpickler that can build nothing but numpy arrays. Downloads go through torchvision, only
with ``--download``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Optional

import numpy as np

from robustmia.data.catalog import DatasetInfo
from robustmia.errors import UserError

TITLE = "CIFAR-10"
ORDER = 1
INFO = DatasetInfo("cifar10", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "crop-flip",
                   "CIFAR-10 python batches (any subset of data_batch_1..5 plus test_batch)")


def folder(root: Path) -> Optional[Path]:
    """The folder holding ``test_batch``: ``root/cifar-10-batches-py`` or ``root`` itself."""
    for candidate in (root / "cifar-10-batches-py", root):
        if (candidate / "test_batch").is_file():
            return candidate
    return None


def missing(root: Path) -> Optional[str]:
    return None if folder(root) is not None else "expected cifar-10-batches-py/ with data_batch_* and test_batch"


class _ArrayUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain containers, refuses every other class."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="latin1").load()
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except Exception as e:  # any damage to the file is the user's to fix
        raise UserError(f"cannot read CIFAR-10 batch {path}: {e}; re-download it with --download") from None
    if len(labels) != len(data) or labels.min() < 0 or labels.max() > 9:
        raise UserError(f"CIFAR-10 batch {path} has inconsistent data/labels; re-download it with --download")
    return data, labels


def load(root: Path, download: bool):
    from robustmia.data.datasets import download_with, from_uint8, torchvision_download

    where = folder(root)
    if where is None and download:
        download_with(root, lambda: torchvision_download("CIFAR10", root))
        where = folder(root)
    if where is None:
        from robustmia.data.catalog import missing_message

        raise UserError(missing_message("cifar10", root))
    train_files = sorted(where.glob("data_batch_[1-5]"))
    if not train_files:
        raise UserError(f"no CIFAR-10 training batch (data_batch_1..5) in {where}; pass --download to fetch them")
    parts = [_read_cifar_batch(p) for p in train_files]
    train = from_uint8(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, from_uint8(*_read_cifar_batch(where / "test_batch"))
