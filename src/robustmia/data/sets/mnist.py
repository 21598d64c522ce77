"""MNIST handwritten digits, torchvision's IDX files (``MNIST/raw/``, gzipped or not);
downloaded through torchvision only with ``--download``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from robustmia.data.catalog import DatasetInfo
from robustmia.data.sets import _idx

TITLE = "MNIST"
ORDER = 4
INFO = DatasetInfo("mnist", (1, 28, 28), 10, (0.1307,), (0.3081,), "none", "MNIST digits, torchvision's IDX files (60,000 / 10,000)")


def missing(root: Path) -> Optional[str]:
    return _idx.missing(root, "MNIST")


def sizes(root: Path) -> Optional[tuple[int, int]]:
    return _idx.sizes(root, "MNIST")


def load(root: Path, download: bool):
    return _idx.load("mnist", root, download, "MNIST", TITLE)
