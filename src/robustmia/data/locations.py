"""Where each dataset's files lie, checked without loading them (no numerical libraries)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from robustmia.errors import UserError

DATASET_NAMES = ("digits", "cifar10", "svhn")
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def default_data_dir(name: str) -> Path:
    root = os.environ.get("ROBUSTMIA_DATA_DIR") or Path.home() / ".cache" / "robustmia" / "data"
    return Path(root) / name


def resolve_root(name: str, data_dir: Optional[str | os.PathLike]) -> Path:
    return Path(data_dir) if data_dir is not None else default_data_dir(name)


def cifar_folder(root: Path) -> Optional[Path]:
    """The folder holding ``test_batch``: ``root/cifar-10-batches-py`` or ``root`` itself."""
    for candidate in (root / "cifar-10-batches-py", root):
        if (candidate / "test_batch").is_file():
            return candidate
    return None


def missing_message(name: str, root: Path) -> str:
    if name == "cifar10":
        what = "expected cifar-10-batches-py/ with data_batch_* and test_batch"
    else:
        what = f"expected {' and '.join(SVHN_FILES.values())}"
    return f"{'CIFAR-10' if name == 'cifar10' else 'SVHN'} not found in {root} ({what}); pass --download to fetch it, or --data-dir to point at an existing copy"


def check_data_present(name: str, data_dir: Optional[str | os.PathLike]) -> None:
    """Raise if ``name`` is unknown or its files are not where the config says."""
    if name not in DATASET_NAMES:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
    if name == "digits":
        return
    root = resolve_root(name, data_dir)
    present = cifar_folder(root) is not None if name == "cifar10" else all((root / f).is_file() for f in SVHN_FILES.values())
    if not present:
        raise UserError(missing_message(name, root))
