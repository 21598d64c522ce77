"""SVHN cropped digits: ``train_32x32.mat`` / ``test_32x32.mat`` (``X``: uint8 (32, 32, 3, N);
``y``: (N, 1) with 10 meaning digit 0). Downloads go through torchvision, only with ``--download``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from robustmia.data.catalog import DatasetInfo
from robustmia.errors import UserError

TITLE = "SVHN"
ORDER = 2
STANDARD_SIZES = (73_257, 26_032)  # (train, test) of the full dataset: a study's plan (experiments.plan) without its files
INFO = DatasetInfo("svhn", (3, 32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), "none",
                   "SVHN cropped digits, train_32x32.mat / test_32x32.mat (73,257 / 26,032)")
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def missing(root: Path) -> Optional[str]:
    return None if all((root / f).is_file() for f in FILES.values()) else f"expected {' and '.join(FILES.values())}"


def _read_svhn_mat(path: Path):
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
        x, y = mat["X"], np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    except Exception as e:
        raise UserError(f"cannot read SVHN file {path}: {e}; re-download it with --download") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise UserError(f"SVHN file {path} is not in the 32x32 cropped-digit layout (X: uint8 32x32x3xN, y: Nx1)")
    y = np.where(y == 10, 0, y)
    if y.min() < 0 or y.max() > 9:
        raise UserError(f"SVHN file {path} has labels outside 1..10")
    from robustmia.data.datasets import from_uint8

    return from_uint8(x.transpose(3, 2, 0, 1), y)


def load(root: Path, download: bool):
    from robustmia.data.datasets import ensure_present

    ensure_present("svhn", root, download, "SVHN")
    return _read_svhn_mat(root / FILES["train"]), _read_svhn_mat(root / FILES["test"])
