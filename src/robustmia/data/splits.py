"""Who is a member: the deterministic split of a dataset for one run.

- ``members``: indices into the train split, the target model's training set;
- ``nonmembers``: indices into the test split, as many as there are members (or the
  whole test split if it is smaller), the evaluation set's other half;
- ``pool_train`` / ``pool_test``: every remaining index of each split, disjoint from the
  two above, left for reference and shadow models.

A split depends only on the split sizes, ``train_size`` and the run's seed. It is saved with the
run as ``split.npz`` (plain integer arrays, loaded with ``allow_pickle=False``) and checked
again on load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from robustmia.errors import UserError

_ARRAYS = ("members", "nonmembers", "pool_train", "pool_test")


@dataclass
class Split:
    members: np.ndarray
    nonmembers: np.ndarray
    pool_train: np.ndarray
    pool_test: np.ndarray
    n_train: int
    n_test: int
    seed: int

    def validate(self, source: str = "split") -> None:
        for name, size in zip(_ARRAYS, (self.n_train, self.n_test, self.n_train, self.n_test)):
            a = getattr(self, name)
            if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
                raise UserError(f"{source}: {name} must be a 1-D integer array; delete the file to re-create the split")
            if a.size and (a.min() < 0 or a.max() >= size):
                raise UserError(f"{source}: {name} has indices outside [0, {size}); it belongs to another dataset")
            if np.unique(a).size != a.size:
                raise UserError(f"{source}: {name} has repeated indices; delete the file to re-create the split")
        for a, b in (("members", "pool_train"), ("nonmembers", "pool_test")):
            if np.intersect1d(getattr(self, a), getattr(self, b)).size:
                raise UserError(f"{source}: {a} and {b} overlap; delete the file to re-create the split")


def make_split(n_train: int, n_test: int, train_size: Optional[int] = None, seed: int = 0) -> Split:
    if train_size is None:
        train_size = n_train
    if not 1 <= train_size <= n_train:
        raise UserError(f"train_size {train_size} is out of range: the train split has {n_train} images")
    rng = np.random.default_rng([seed, 0x5EED])
    train_order = rng.permutation(n_train)
    test_order = rng.permutation(n_test)
    n_non = min(train_size, n_test)
    split = Split(
        members=np.sort(train_order[:train_size]),
        nonmembers=np.sort(test_order[:n_non]),
        pool_train=np.sort(train_order[train_size:]),
        pool_test=np.sort(test_order[n_non:]),
        n_train=n_train,
        n_test=n_test,
        seed=seed,
    )
    split.validate()
    return split


def save_split(split: Split, path: str | os.PathLike) -> None:
    from robustmia.io import atomic_write

    with atomic_write(path) as f:
        np.savez(
            f,
            **{name: getattr(split, name).astype(np.int64) for name in _ARRAYS},
            n_train=np.int64(split.n_train),
            n_test=np.int64(split.n_test),
            seed=np.int64(split.seed),
        )


def load_split(path: str | os.PathLike) -> Split:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: np.asarray(z[name]) for name in (*_ARRAYS, "n_train", "n_test", "seed")}
    except FileNotFoundError:
        raise UserError(f"split file {path} is missing; the run folder is incomplete") from None
    except Exception as e:
        raise UserError(f"cannot read split file {path} ({e}); delete it to re-create the split") from None
    split = Split(
        **{name: arrays[name] for name in _ARRAYS},
        n_train=int(arrays["n_train"]),
        n_test=int(arrays["n_test"]),
        seed=int(arrays["seed"]),
    )
    split.validate(str(path))
    return split
