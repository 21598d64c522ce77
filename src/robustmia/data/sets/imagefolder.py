"""Your own images: ``root/train/<class>/*.png|jpg`` and ``root/test/<class>/*.png|jpg`` (the
ImageFolder layout: one sub-folder per class, classes in sorted order, the same in both splits).
Images are read as RGB and resized to a declared square size: ``imagefolder`` is 32x32,
``imagefolder-S`` is SxS (e.g. ``imagefolder-64``). A model robustmia trains on them starts with
a generic normalisation (mean 0.5, std 0.25 per channel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from robustmia.data.catalog import DatasetInfo
from robustmia.errors import UserError

ORDER = 6
DEFAULT_SIZE = 32
SIZED = True  # the name may end in -S, the side of the square images
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
INFO = DatasetInfo("imagefolder", (3, DEFAULT_SIZE, DEFAULT_SIZE), 0, (0.5,) * 3, (0.25,) * 3, "none",
                   "your images: root/train/<class>/ and root/test/<class>/ (PNG, JPEG), resized to 32x32 "
                   "(imagefolder-S: SxS); classes from the sub-folders")


def classes_of(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def missing(root: Path) -> Optional[str]:
    found = {split: classes_of(root / split) for split in ("train", "test")}
    if not all(found.values()):
        return "expected train/ and test/, each with one sub-folder of images per class"
    if found["train"] != found["test"]:
        return f"train/ and test/ have different class folders ({', '.join(found['train'])} vs {', '.join(found['test'])})"
    if len(found["train"]) < 2:
        return f"only one class folder ({found['train'][0]}); a classifier needs at least two"
    return None


def sizes(root: Path) -> tuple[int, int]:
    return tuple(sum(1 for p in (root / split).glob("*/*") if p.suffix.lower() in EXTENSIONS) for split in ("train", "test"))


def _size(name: str) -> int:
    return int(name.rpartition("-")[2]) if name != "imagefolder" else DEFAULT_SIZE


def info(root: Path, name: str) -> DatasetInfo:
    size = _size(name)
    return DatasetInfo(name, (3, size, size), len(classes_of(root / "train")), INFO.mean, INFO.std, "none",
                       f"images of {root}, resized to {size}x{size}")


def read_folder(folder: Path, size: int, classes: Optional[list[str]] = None):
    """The images of ``folder/<class>/*`` as an ImageSet (RGB, resized to ``size`` x ``size``),
    labelled by the position of their class in ``classes`` (default: the sorted sub-folders)."""
    from PIL import Image

    from robustmia.data.datasets import from_uint8

    classes = classes or classes_of(folder)
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()) if (folder / name).is_dir() else []:
            if path.suffix.lower() not in EXTENSIONS:
                continue
            try:
                with Image.open(path) as im:
                    images.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)))
            except OSError as e:
                raise UserError(f"cannot read image {path} ({e}); remove or replace it") from None
            labels.append(label)
    if not images:
        raise UserError(f"no images (PNG, JPEG) in the class folders of {folder}")
    return from_uint8(np.stack(images).transpose(0, 3, 1, 2), np.asarray(labels))


def load(root: Path, download: bool, name: str = "imagefolder"):
    from robustmia.data.catalog import missing_message

    message = missing_message(name, root)
    if message is not None:
        raise UserError(message.replace("; pass --download to fetch it, or", "; pass"))
    classes = classes_of(root / "train")
    return read_folder(root / "train", _size(name), classes), read_folder(root / "test", _size(name), classes)
