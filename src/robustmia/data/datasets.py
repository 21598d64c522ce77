"""The datasets robustmia knows: where they live, how they are read, what they hold.

Every loader returns a train and a test :class:`ImageSet` of float32 images in [0, 1]
(N, C, H, W) and int64 labels. Normalisation is not applied here: it lives inside each
model, so that an epsilon means the same thing everywhere (pixel space).

- ``digits``: scikit-learn's 8x8 digits (1,797 images, ships with scikit-learn, offline).
  It has no official split; a fixed permutation (seed 0, independent of any run seed)
  makes the first 898 images the train split and the other 899 the test split.
- ``cifar10``: the python-pickle batches. Any subset of ``data_batch_1..5`` is read as
  found (no checksum), so a folder holding only ``data_batch_1`` and ``test_batch``
  works unchanged. The pickles are read with an unpickler that can build nothing but
  numpy arrays.
- ``svhn``: the cropped-digit ``train_32x32.mat`` / ``test_32x32.mat`` files
  (``X``: uint8 (32, 32, 3, N); ``y``: (N, 1) with 10 meaning digit 0).

Downloads go through torchvision and only happen when asked (``download=True``).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from robustmia.data.locations import SVHN_FILES, cifar_folder, missing_message, resolve_root
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


@dataclass
class ImageSet:
    images: torch.Tensor  # float32 (N, C, H, W) in [0, 1]
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices) -> "ImageSet":
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx])

    @staticmethod
    def concat(*parts: "ImageSet") -> "ImageSet":
        return ImageSet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


DIGITS_TRAIN_SIZE = 898

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "digits", (1, 8, 8), 10, (0.3050,), (0.3760,), "none",
            "scikit-learn's 8x8 handwritten digits, offline (898 train / 899 test); the embedded default",
        ),
        DatasetInfo(
            "cifar10", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "crop-flip",
            "CIFAR-10 python batches (any subset of data_batch_1..5 plus test_batch)",
        ),
        DatasetInfo(
            "svhn", (3, 32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), "none",
            "SVHN cropped digits, train_32x32.mat / test_32x32.mat (73,257 / 26,032)",
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def load_dataset(
    name: str, data_dir: Optional[str | os.PathLike] = None, download: bool = False
) -> tuple[ImageSet, ImageSet]:
    """Load ``name`` and return ``(train, test)``."""
    dataset_info(name)
    loader = _LOADERS[name]
    return loader(resolve_root(name, data_dir), download)


def _from_uint8(images: np.ndarray, labels: np.ndarray) -> ImageSet:
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)
    return ImageSet(x, torch.from_numpy(np.asarray(labels, dtype=np.int64)))


# --- digits -----------------------------------------------------------------------------

def _load_digits(root: Path, download: bool) -> tuple[ImageSet, ImageSet]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(labels)))
    train, test = order[:DIGITS_TRAIN_SIZE], order[DIGITS_TRAIN_SIZE:]
    return ImageSet(images[train], labels[train]), ImageSet(images[test], labels[test])


# --- cifar10 ----------------------------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain containers, refuses every other class."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="latin1").load()
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except Exception as e:  # any damage to the file is the user's to fix
        raise UserError(f"cannot read CIFAR-10 batch {path}: {e}; re-download it with --download") from None
    if len(labels) != len(data) or labels.min() < 0 or labels.max() > 9:
        raise UserError(f"CIFAR-10 batch {path} has inconsistent data/labels; re-download it with --download")
    return data, labels


def _load_cifar10(root: Path, download: bool) -> tuple[ImageSet, ImageSet]:
    folder = cifar_folder(root)
    if folder is None and download:
        _download(root, lambda: _torchvision_download("CIFAR10", root))
        folder = cifar_folder(root)
    if folder is None:
        raise UserError(missing_message("cifar10", root))
    train_files = sorted(folder.glob("data_batch_[1-5]"))
    if not train_files:
        raise UserError(f"no CIFAR-10 training batch (data_batch_1..5) in {folder}; pass --download to fetch them")
    parts = [_read_cifar_batch(p) for p in train_files]
    train = _from_uint8(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, _from_uint8(*_read_cifar_batch(folder / "test_batch"))


# --- svhn -------------------------------------------------------------------------------

def _read_svhn_mat(path: Path) -> ImageSet:
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
    return _from_uint8(x.transpose(3, 2, 0, 1), y)


def _load_svhn(root: Path, download: bool) -> tuple[ImageSet, ImageSet]:
    files = {split: root / name for split, name in SVHN_FILES.items()}
    missing = [split for split, p in files.items() if not p.is_file()]
    if missing and download:
        for split in missing:
            _download(root, lambda s=split: _torchvision_download("SVHN", root, split=s))
        missing = [split for split, p in files.items() if not p.is_file()]
    if missing:
        raise UserError(missing_message("svhn", root))
    return _read_svhn_mat(files["train"]), _read_svhn_mat(files["test"])


# --- downloads --------------------------------------------------------------------------

def _torchvision_download(cls_name: str, root: Path, **kwargs) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    if cls_name == "CIFAR10":
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    else:
        cls(str(root), download=True, **kwargs)


def _download(root: Path, fetch: Callable[[], None]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    try:
        fetch()
    except Exception as e:
        raise UserError(f"download into {root} failed ({e}); check the network, or fetch the files by hand") from None


_LOADERS: dict[str, Callable[[Path, bool], tuple[ImageSet, ImageSet]]] = {
    "digits": _load_digits,
    "cifar10": _load_cifar10,
    "svhn": _load_svhn,
}
