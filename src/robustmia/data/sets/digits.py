"""scikit-learn's 8x8 handwritten digits: offline, the embedded default.

It has no official split; a fixed permutation (seed 0, independent of any run seed) makes
the first 898 images the train split and the other 899 the test split. Indices in scikit-learn's own order
(``load_digits()``) are mapped to them by :func:`original_positions` (``--index-order original``).
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


def _images_and_labels():
    """scikit-learn's own file of the digits (``datasets/data/digits.csv.gz``: 64 pixels from 0 to 16 and the label,
    a row per image), read as ``sklearn.datasets.load_digits`` reads it, without importing scikit-learn (2 s a
    process); load_digits itself where the file is not where it has always been."""
    import gzip
    import importlib.util

    import numpy as np

    spec = importlib.util.find_spec("sklearn")  # finds the package, imports nothing
    files = [Path(folder) / "datasets" / "data" / "digits.csv.gz" for folder in (spec.submodule_search_locations or [] if spec else [])]
    path = next((f for f in files if f.is_file()), None)
    if path is None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    return rows[:, :-1].reshape(-1, 8, 8), rows[:, -1]


def _permutation():
    import numpy as np

    return np.random.default_rng(0).permutation(1797)


def original_positions(n_train: int, n_test: int):
    """(split, position) of each image in scikit-learn's order: train position j holds original image perm[j]."""
    import numpy as np

    perm = _permutation()
    split, position = np.empty(len(perm), np.int64), np.empty(len(perm), np.int64)
    split[perm[:TRAIN_SIZE]], position[perm[:TRAIN_SIZE]] = 0, np.arange(TRAIN_SIZE)
    split[perm[TRAIN_SIZE:]], position[perm[TRAIN_SIZE:]] = 1, np.arange(len(perm) - TRAIN_SIZE)
    return split, position


def load(root: Path, download: bool):
    import numpy as np
    import torch

    from robustmia.data.datasets import ImageSet

    pixels, target = _images_and_labels()
    images = torch.from_numpy(pixels.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(target.astype(np.int64))
    order = torch.from_numpy(_permutation())
    train, test = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    return ImageSet(images[train], labels[train]), ImageSet(images[test], labels[test])
