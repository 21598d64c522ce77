"""CIFAR-100, the python-pickle files (``cifar-100-python/train`` and ``test``), with the 100
fine labels. Read with an unpickler that builds nothing but numpy arrays; downloaded through
torchvision only with ``--download``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from robustmia.data.catalog import DatasetInfo, find_folder

TITLE = "CIFAR-100"
ORDER = 3
STANDARD_SIZES = (50_000, 10_000)  # (train, test) of the full dataset: a study's plan (experiments.plan) without its files
INFO = DatasetInfo("cifar100", (3, 32, 32), 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "crop-flip",
                   "CIFAR-100 python files (cifar-100-python/train and test, fine labels)")


def folder(root: Path) -> Optional[Path]:
    return find_folder(root, ("cifar-100-python", ""), ("train", "test"))


def missing(root: Path) -> Optional[str]:
    return None if folder(root) is not None else "expected cifar-100-python/ with train and test"


def load(root: Path, download: bool):
    from robustmia.data.datasets import ensure_present, from_uint8, read_pickled_batch

    ensure_present("cifar100", root, download, "CIFAR100")
    where = folder(root)
    return tuple(from_uint8(*read_pickled_batch(where / split, "fine_labels", 100, TITLE)) for split in ("train", "test"))
