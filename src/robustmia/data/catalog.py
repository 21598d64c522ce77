"""The datasets robustmia knows: one module per dataset in ``robustmia/data/sets/``, found
by looking, so adding a dataset is adding one module (plus its test).

Each module defines, importing no deep-learning code at module level:

- ``INFO``: a :class:`DatasetInfo` (shape, classes, the normalisation a model starts with,
  the default augmentation, a description);
- ``missing(root) -> str | None``: what is missing in ``root`` (None when the files are there),
  checked without reading them, so that a spec is validated in a fraction of a second;
- ``load(root, download) -> (train, test)``: the two splits as ImageSets (see data.datasets);
- optionally ``TITLE`` (how messages name it), ``ORDER`` (its place in listings),
  ``sizes(root) -> (train, test)`` when the sizes can be told without loading (checked early),
  ``STANDARD_SIZES`` (the full dataset's (train, test), for a plan without its files) and
  ``original_positions(n_train, n_test)`` where robustmia splits the dataset itself (see :func:`original_positions`);
- for datasets of the user's own files: ``info(root, name) -> DatasetInfo`` (shape and classes
  read from the files; ``INFO`` then describes the kind) and ``load(root, download, name)``;
  with ``SIZED = True`` the name may end in ``-S`` (square images of side S).

``root`` is the folder given as ``data_dir``, else ``$ROBUSTMIA_DATA_DIR/<name>``, else
``~/.cache/robustmia/data/<name>``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Optional

from robustmia.errors import UserError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str  # the default augmentation: "crop-flip" or "none"
    description: str


def _modules() -> dict[str, ModuleType]:
    from robustmia.data import sets

    found = {}
    for entry in sorted(pkgutil.iter_modules(sets.__path__), key=lambda m: m.name):
        if entry.name.startswith("_"):  # helpers shared by dataset modules
            continue
        module = importlib.import_module(f"robustmia.data.sets.{entry.name}")
        found[module.INFO.name] = module
    return found




def dataset_module(name: str) -> ModuleType:
    base, _, size = name.rpartition("-")
    if name not in _MODULES and size.isdigit() and int(size) > 0 and getattr(_MODULES.get(base), "SIZED", False):
        name = base  # e.g. imagefolder-64: the module of imagefolder, at 64x64
    try:
        return _MODULES[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def dataset_info(name: str, data_dir: Optional[str | os.PathLike] = None) -> DatasetInfo:
    """What the dataset holds; for datasets of your own files (``info(root, name)`` in their
    module: classes and shape come from the files) read from where ``data_dir`` points."""
    module = dataset_module(name)
    return module.info(resolve_root(name, data_dir), name) if hasattr(module, "info") else module.INFO


def find_folder(root: Path, candidates: tuple[str, ...], files: tuple[str, ...]) -> Optional[Path]:
    """The first of ``root/<candidate>`` (``""``: root itself) that holds every one of ``files``."""
    for candidate in candidates:
        folder = root / candidate if candidate else root
        if all((folder / f).is_file() for f in files):
            return folder
    return None


def default_data_dir(name: str) -> Path:
    root = os.environ.get("ROBUSTMIA_DATA_DIR") or Path.home() / ".cache" / "robustmia" / "data"
    return Path(root) / name


def resolve_root(name: str, data_dir: Optional[str | os.PathLike]) -> Path:
    """Where dataset ``name`` lies: ``data_dir`` itself, or its sub-folder ``name`` when that holds the dataset
    and ``data_dir`` does not (so ``--data-dir`` takes the dataset's folder or the folder of dataset folders,
    e.g. ``../shared/data/cifar10`` or ``../shared/data``, everywhere); without it the default folder."""
    if data_dir is None:
        return default_data_dir(name)
    root, module = Path(data_dir), dataset_module(name)
    nested = root / name
    if module.missing(root) is not None and nested.is_dir() and module.missing(nested) is None:
        return nested
    return root


def missing_message(name: str, root: Path) -> Optional[str]:
    """One line saying what is missing and how to fix it, or None when the files are there."""
    what = dataset_module(name).missing(root)
    if what is None:
        return None
    title = getattr(dataset_module(name), "TITLE", name)
    return f"{title} not found in {root} ({what}); pass --download to fetch it, or --data-dir to point at an existing copy"


def dataset_sizes(name: str, data_dir: Optional[str | os.PathLike] = None) -> Optional[tuple[int, int]]:
    """(train, test) sizes when the dataset's module can tell them without loading it (``sizes(root)``), else None."""
    module = dataset_module(name)
    return module.sizes(resolve_root(name, data_dir)) if hasattr(module, "sizes") else None


def original_positions(name: str, n_train: int, n_test: int):
    """Where each example of the dataset's original order lies: ``(split, position)`` arrays (0 train, 1 test), indexed
    by the original index. A dataset's module that splits it itself says so (``original_positions(n_train, n_test)``,
    e.g. digits' fixed permutation of scikit-learn's order); elsewhere the original order is the train split's
    followed by the test split's (torchvision's ``train=True`` then ``train=False``)."""
    import numpy as np

    module = dataset_module(name)
    if hasattr(module, "original_positions"):
        return module.original_positions(n_train, n_test)
    split = np.r_[np.zeros(n_train, np.int64), np.ones(n_test, np.int64)]
    return split, np.r_[np.arange(n_train), np.arange(n_test)]


def check_data_present(name: str, data_dir: Optional[str | os.PathLike]) -> None:
    """Raise if ``name`` is unknown or its files are not where the config says."""
    message = missing_message(name, resolve_root(name, data_dir))
    if message is not None:
        raise UserError(message)


# found last: the dataset modules import the helpers above
_MODULES = _modules()
DATASETS: dict[str, DatasetInfo] = {name: m.INFO for name, m in sorted(_MODULES.items(), key=lambda kv: getattr(kv[1], "ORDER", 99))}
