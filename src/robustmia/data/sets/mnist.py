"""MNIST handwritten digits, torchvision's IDX files (``MNIST/raw/``, gzipped or not);
downloaded through torchvision only with ``--download``."""

from __future__ import annotations

from robustmia.data.catalog import DatasetInfo
from robustmia.data.sets import _idx

TITLE = "MNIST"
ORDER = 4
STANDARD_SIZES = (60_000, 10_000)  # (train, test) of the full dataset: a study's plan (experiments.plan) without its files
INFO = DatasetInfo("mnist", (1, 28, 28), 10, (0.1307,), (0.3081,), "none", "MNIST digits, torchvision's IDX files (60,000 / 10,000)")
missing, sizes, load = _idx.functions("mnist", "MNIST", TITLE)
