"""Your own images: ``root/train/<class>/*.png|jpg`` and ``root/test/<class>/*.png|jpg`` (the
ImageFolder layout: one sub-folder per class, classes in sorted order, the same in both splits).
Images are read as RGB and resized to a declared square size: ``imagefolder`` is 32x32,
``imagefolder-S`` is SxS (e.g. ``imagefolder-64``). A model robustmia trains on them starts with
a generic normalisation (mean 0.5, std 0.25 per channel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from robustmia.data.catalog import DatasetInfo
from robustmia.errors import UserError

ORDER = 6
DEFAULT_SIZE = 32
MAX_SIZE = 512  # the largest side images are resized to (imagefolder-S, --image-size): beyond it the arrays outgrow memory
MAX_PIXELS = 4096 * 4096  # the largest image file read (a larger one, e.g. a decompression bomb, is refused unread)
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


def check_size(size: int) -> int:
    if not 1 <= size <= MAX_SIZE:
        raise UserError(f"images are resized to at most {MAX_SIZE}x{MAX_SIZE} pixels (got {size}); choose a smaller size")
    return size


def _size(name: str) -> int:
    return check_size(int(name.rpartition("-")[2])) if name != "imagefolder" else DEFAULT_SIZE


def info(root: Path, name: str) -> DatasetInfo:
    size = _size(name)
    return DatasetInfo(name, (3, size, size), len(classes_of(root / "train")), INFO.mean, INFO.std, "none",
                       f"images of {root}, resized to {size}x{size}")


def image_channels(im: Any) -> int:
    """1 for a greyscale image (with or without alpha), 3 for a colour one (RGB, RGBA, palette, CMYK, ...)."""
    return 1 if im.getbands()[0] in ("L", "1", "I", "F") else 3


def read_folder(folder: Path, size: int, classes: Optional[list[str]] = None, channels: int = 3, dataset: Optional[str] = None):
    """The images of ``folder/<class>/*`` as an ImageSet (RGB, or greyscale with ``channels=1``, resized to
    ``size`` x ``size``), labelled by the position of their class in ``classes`` (default: the sorted sub-folders).
    With ``dataset`` named (the images are said to be its), an image of another channel count is refused."""
    import warnings

    from PIL import Image

    check_size(size)
    mode = {1: "L", 3: "RGB"}[channels]
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # PIL's own limit too, as an error
        return _read_images(folder, size, classes or classes_of(folder), mode, channels, dataset)


def _read_images(folder: Path, size: int, classes: list[str], mode: str, channels: int, dataset: Optional[str]):
    from PIL import Image

    from robustmia.data.datasets import from_uint8

    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()) if (folder / name).is_dir() else []:
            if path.suffix.lower() not in EXTENSIONS:
                continue
            try:
                with Image.open(path) as im:
                    if dataset is not None and image_channels(im) != channels:
                        raise UserError(f"image {path} has {image_channels(im)} channel(s), but {dataset}'s images have {channels}; "
                                        "give images of that dataset, or leave out --dataset")
                    if im.width * im.height > MAX_PIXELS:
                        raise Image.DecompressionBombError(f"{im.width}x{im.height}")
                    images.append(np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR)).reshape(size, size, -1))
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise UserError(f"image {path} has more pixels than robustmia reads (at most {MAX_PIXELS:,}): a decompression "
                                "bomb, or a photo to resize first; remove or resize it") from None
            except (OSError, ValueError) as e:
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
