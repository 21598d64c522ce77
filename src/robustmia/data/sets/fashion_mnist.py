"""Fashion-MNIST, torchvision's IDX files (``FashionMNIST/raw/``, gzipped or not);
downloaded through torchvision only with ``--download``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from robustmia.data.catalog import DatasetInfo
from robustmia.data.sets import _idx

TITLE = "Fashion-MNIST"
ORDER = 5
INFO = DatasetInfo("fashion-mnist", (1, 28, 28), 10, (0.2860,), (0.3530,), "none",
                   "Fashion-MNIST, torchvision's IDX files (60,000 / 10,000)")


def missing(root: Path) -> Optional[str]:
    return _idx.missing(root, "FashionMNIST")


def sizes(root: Path) -> Optional[tuple[int, int]]:
    return _idx.sizes(root, "FashionMNIST")


def load(root: Path, download: bool):
    return _idx.load("fashion-mnist", root, download, "FashionMNIST", TITLE)
