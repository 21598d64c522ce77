"""Fashion-MNIST, torchvision's IDX files (``FashionMNIST/raw/``, gzipped or not);
downloaded through torchvision only with ``--download``."""

from __future__ import annotations

from robustmia.data.catalog import DatasetInfo
from robustmia.data.sets import _idx

TITLE = "Fashion-MNIST"
ORDER = 5
STANDARD_SIZES = (60_000, 10_000)  # (train, test) of the full dataset: a study's plan (experiments.plan) without its files
INFO = DatasetInfo("fashion-mnist", (1, 28, 28), 10, (0.2860,), (0.3530,), "none",
                   "Fashion-MNIST, torchvision's IDX files (60,000 / 10,000)")
missing, sizes, load = _idx.functions("fashion-mnist", "FashionMNIST", TITLE)
