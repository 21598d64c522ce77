"""CIFAR-100, MNIST, Fashion-MNIST, ImageFolder and npz datasets, read from files in their
original formats. No real copies exist offline: every file here is GENERATED (random pixels,
random labels) in the layout torchvision and the original distributions use."""

import gzip
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from robustmia.data.catalog import check_data_present, dataset_info
from robustmia.data.datasets import load_dataset
from robustmia.errors import UserError


def test_cifar100_python_files_with_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    expected = {}
    for split, n in (("train", 6), ("test", 4)):
        data, fine = rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 100, n).tolist()
        with open(folder / split, "wb") as f:  # the original layout: bytes keys are str after latin1 decoding
            pickle.dump({"filenames": [], "batch_label": split, "fine_labels": fine, "coarse_labels": [0] * n, "data": data}, f, protocol=2)
        expected[split] = (data, fine)
    train, test = load_dataset("cifar100", tmp_path)
    assert train.images.shape == (6, 3, 32, 32) and test.labels.tolist() == expected["test"][1]
    # channel-major rows, as in CIFAR-10: value 1024 * c + 32 * i + j is pixel (c, i, j)
    assert round(float(train.images[2, 1, 3, 4]) * 255) == expected["train"][0][2, 1024 + 3 * 32 + 4]
    assert dataset_info("cifar100").num_classes == 100


def _idx(path, array, gz):
    header = (0x800 + array.ndim).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    (gzip.open if gz else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder, gz", [("mnist", "MNIST", True), ("fashion-mnist", "FashionMNIST", False)])
def test_mnist_style_idx_files(tmp_path, name, folder, gz):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    images = {"train": rng.integers(0, 256, (7, 28, 28)), "t10k": rng.integers(0, 256, (5, 28, 28))}
    labels = {"train": rng.integers(0, 10, 7), "t10k": rng.integers(0, 10, 5)}
    for split in ("train", "t10k"):
        suffix = ".gz" if gz else ""
        _idx(raw / f"{split}-images-idx3-ubyte{suffix}", images[split], gz)
        _idx(raw / f"{split}-labels-idx1-ubyte{suffix}", labels[split], gz)
    train, test = load_dataset(name, tmp_path)
    assert train.images.shape == (7, 1, 28, 28) and len(test) == 5
    assert train.labels.tolist() == labels["train"].tolist()
    assert round(float(test.images[3, 0, 5, 6]) * 255) == images["t10k"][3, 5, 6]
    _idx(raw / f"train-labels-idx1-ubyte{'.gz' if gz else ''}", images["train"], gz)  # an image file where labels belong
    with pytest.raises(UserError, match="magic number"):
        load_dataset(name, tmp_path)


def _png_folder(root, classes, per_class, size=(12, 10), seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_imagefolder_of_generated_pngs_resized_to_the_declared_size(tmp_path):
    _png_folder(tmp_path / "train", ["cat", "dog", "eel"], 4)
    _png_folder(tmp_path / "test", ["cat", "dog", "eel"], 2, seed=1)
    train, test = load_dataset("imagefolder-16", tmp_path)
    assert train.images.shape == (12, 3, 16, 16) and test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    info = dataset_info("imagefolder-16", tmp_path)
    assert info.shape == (3, 16, 16) and info.num_classes == 3
    assert load_dataset("imagefolder", tmp_path)[0].images.shape[-1] == 32


def test_imagefolder_with_one_class_is_refused(tmp_path):
    _png_folder(tmp_path / "train", ["only"], 2)
    _png_folder(tmp_path / "test", ["only"], 2)
    with pytest.raises(UserError, match="only one class folder"):
        check_data_present("imagefolder", tmp_path)


def test_npz_arrays_in_either_layout(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "train.npz", images=rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), labels=np.arange(6) % 4)
    np.savez(tmp_path / "test.npz", images=rng.random((3, 3, 8, 8)).astype(np.float32), labels=np.array([0, 1, 3]))
    train, test = load_dataset("npz", tmp_path)
    assert train.images.shape == (6, 3, 8, 8) and test.images.shape == (3, 3, 8, 8)
    assert torch.equal(test.labels, torch.tensor([0, 1, 3])) and dataset_info("npz", tmp_path).num_classes == 4
    np.savez(tmp_path / "test.npz", images=np.full((2, 3, 8, 8), 7.0, np.float32), labels=np.array([0, 1]))
    with pytest.raises(UserError, match=r"finite floats in \[0, 1\]"):
        load_dataset("npz", tmp_path)
