"""The IDX files of MNIST and Fashion-MNIST, as torchvision lays them out
(``<root>/<Folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, gzipped or not; also
found directly in ``root`` or ``root/raw``). Shared by the two dataset modules; its name starts
with an underscore, so the catalog does not take it for a dataset."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Optional

import numpy as np

from robustmia.errors import UserError

SIDE = (28, 28)  # MNIST's and Fashion-MNIST's images
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(folder: Path, name: str) -> Optional[Path]:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def folder(root: Path, torchvision_folder: str) -> Optional[Path]:
    for candidate in (root / torchvision_folder / "raw", root / "raw", root):
        if all(_find(candidate, f) for pair in FILES.values() for f in pair):
            return candidate
    return None


def missing(root: Path, torchvision_folder: str) -> Optional[str]:
    if folder(root, torchvision_folder) is not None:
        return None
    return f"expected {torchvision_folder}/raw/ with {', '.join(f for pair in FILES.values() for f in pair)} (or .gz)"


def sizes(root: Path, torchvision_folder: str) -> Optional[tuple[int, int]]:
    """The two splits' sizes from the label files' headers (8 bytes each), or None if unreadable."""
    where = folder(root, torchvision_folder)
    try:
        counts = []
        for _, labels_file in FILES.values():
            path = _find(where, labels_file)
            with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
                counts.append(int.from_bytes(f.read(8)[4:8], "big"))
        return counts[0], counts[1]
    except (OSError, TypeError, EOFError):
        return None


def read_idx(path: Path, dims: int, title: str) -> np.ndarray:
    """An unsigned-byte IDX array (magic 0x0000080N with N = ``dims``, big-endian sizes)."""
    try:
        raw = (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")).read()
        magic = int.from_bytes(raw[:4], "big")
        if magic != 0x800 + dims:
            raise ValueError(f"magic number {magic:#x}, expected {0x800 + dims:#x}")
        shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
        if data.size != int(np.prod(shape)) or data.size == 0:
            raise ValueError(f"{data.size} values for shape {shape}")
        return data.reshape(shape).copy()
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"cannot read {title} file {path} ({e}); re-download it with --download") from None


def load(name: str, root: Path, download: bool, torchvision_folder: str, title: str):
    from robustmia.data.datasets import ensure_present, from_uint8

    ensure_present(name, root, download, torchvision_folder)
    where = folder(root, torchvision_folder)
    splits = []
    for images_file, labels_file in FILES.values():
        images = read_idx(_find(where, images_file), 3, title)
        if images.shape[1:] != SIDE:
            raise UserError(f"{title} file {_find(where, images_file)} holds {images.shape[1]}x{images.shape[2]} images, but {title}'s "
                            f"are {SIDE[0]}x{SIDE[1]}; point --data-dir at the original files")
        labels = read_idx(_find(where, labels_file), 1, title).astype(np.int64)
        if len(images) != len(labels) or labels.max() > 9:
            raise UserError(f"{title} files in {where} have inconsistent images/labels; re-download them with --download")
        splits.append(from_uint8(images[:, None], labels))
    return tuple(splits)


def functions(name: str, torchvision_folder: str, title: str):
    """A dataset module's ``missing``, ``sizes`` and ``load`` for IDX files in ``torchvision_folder``."""
    return (lambda root: missing(root, torchvision_folder), lambda root: sizes(root, torchvision_folder),
            lambda root, download: load(name, root, download, torchvision_folder, title))
