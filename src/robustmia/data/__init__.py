"""Datasets (images in [0, 1] plus integer labels), splits and augmentation."""

from robustmia.data.datasets import DATASETS, DatasetInfo, ImageSet, load_dataset
from robustmia.data.splits import Split, load_split, make_split, save_split

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "ImageSet",
    "Split",
    "load_dataset",
    "load_split",
    "make_split",
    "save_split",
]
