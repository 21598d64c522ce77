"""CIFAR-10, the python-pickle batches (``cifar-10-batches-py/``).

Any subset of ``data_batch_1..5`` is read as found (no checksum), so a folder holding only
``data_batch_1`` and ``test_batch`` works unchanged. The pickles are read with an
unpickler that can build nothing but numpy arrays. Downloads go through torchvision, only
with ``--download``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from robustmia.data.catalog import DatasetInfo, find_folder
from robustmia.errors import UserError

TITLE = "CIFAR-10"
ORDER = 1
STANDARD_SIZES = (50_000, 10_000)  # (train, test) of the full dataset: a study's plan (experiments.plan) without its files
INFO = DatasetInfo("cifar10", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "crop-flip",
                   "CIFAR-10 python batches (any subset of data_batch_1..5 plus test_batch)")


def folder(root: Path) -> Optional[Path]:
    """The folder holding ``test_batch``: ``root/cifar-10-batches-py`` or ``root`` itself."""
    return find_folder(root, ("cifar-10-batches-py", ""), ("test_batch",))


def missing(root: Path) -> Optional[str]:
    return None if folder(root) is not None else "expected cifar-10-batches-py/ with data_batch_* and test_batch"


def load(root: Path, download: bool):
    from robustmia.data.datasets import ensure_present, from_uint8, read_pickled_batch

    ensure_present("cifar10", root, download, "CIFAR10")
    where = folder(root)
    train_files = sorted(where.glob("data_batch_[1-5]"))
    if not train_files:
        raise UserError(f"no CIFAR-10 training batch (data_batch_1..5) in {where}; pass --download to fetch them")
    parts = [read_pickled_batch(p, "labels", 10, "CIFAR-10") for p in train_files]
    train = from_uint8(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, from_uint8(*read_pickled_batch(where / "test_batch", "labels", 10, "CIFAR-10"))
