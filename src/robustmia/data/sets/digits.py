"""scikit-learn's 8x8 handwritten digits: offline, the embedded default.

It has no official split; a fixed permutation (seed 0, independent of any run seed) makes
the first 898 images the train split and the other 899 the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from robustmia.data.catalog import DatasetInfo

ORDER = 0
INFO = DatasetInfo("digits", (1, 8, 8), 10, (0.3050,), (0.3760,), "none",
                   "scikit-learn's 8x8 handwritten digits, offline (898 train / 899 test); the embedded default")
TRAIN_SIZE = 898


def sizes(root: Path) -> tuple[int, int]:
    return TRAIN_SIZE, 1797 - TRAIN_SIZE


def missing(root: Path) -> Optional[str]:
    return None  # ships with scikit-learn


def load(root: Path, download: bool):
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from robustmia.data.datasets import ImageSet

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(labels)))
    train, test = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    return ImageSet(images[train], labels[train]), ImageSet(images[test], labels[test])
