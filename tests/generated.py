"""Generated datasets in the original file layouts (random pixels and labels, made by the tests:
they are not real data). They let the tests exercise every dataset's real loader, everywhere."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_cifar10(root: Path, n_train: int = 160, n_test: int = 160, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py/{data_batch_1,test_batch}``: python pickles as CIFAR-10 ships them."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("data_batch_1", n_train), ("test_batch", n_test)):
        batch = {"batch_label": name, "labels": [int(v) for v in np.arange(n) % 10],
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return Path(root)


def write_svhn(root: Path, n_train: int = 160, n_test: int = 160, seed: int = 0) -> Path:
    """``root/{train,test}_32x32.mat``: X uint8 (32, 32, 3, N), y (N, 1) with 10 meaning digit 0."""
    from scipy.io import savemat

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(-1, 1)
        savemat(root / name, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": y})
    return root


def data_root(tmp: Path) -> Path:
    """A folder with one sub-folder per dataset (``cifar10/``, ``svhn/``), as ``--data-dir`` of a study takes."""
    write_cifar10(tmp / "cifar10")
    write_svhn(tmp / "svhn")
    return tmp
