import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from robustmia.data.datasets import DATASETS, load_dataset
from robustmia.errors import UserError


def test_digits_is_offline_split_and_scaled():
    from sklearn.datasets import load_digits

    train, test = load_dataset("digits")
    assert (len(train), len(test)) == (898, 899)
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.float32
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) == 1.0
    # together the two splits are exactly scikit-learn's images, each once
    raw = torch.from_numpy(load_digits().images.astype(np.float32) / 16).reshape(-1, 64)
    both = torch.cat([train.images, test.images]).reshape(-1, 64)
    key = lambda t: sorted(map(tuple, t.tolist()))  # noqa: E731
    assert key(both) == key(raw)
    again, _ = load_dataset("digits")
    assert torch.equal(again.images, train.images)


def test_digits_are_scikit_learns_own_in_its_order_read_without_importing_it():
    from sklearn.datasets import load_digits

    from robustmia.data.sets.digits import _images_and_labels

    pixels, labels = _images_and_labels()
    reference = load_digits()
    assert np.array_equal(pixels, reference.images) and np.array_equal(labels, reference.target)
    probe = "import sys; from robustmia.data.datasets import load_dataset; load_dataset('digits'); print('sklearn' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_unknown_dataset_is_a_user_error():
    with pytest.raises(UserError, match="unknown dataset 'emnist'.*digits"):
        load_dataset("emnist")


def test_cifar10_subset_matches_a_plain_pickle_reading(cifar_dir):
    """Every batch the folder holds (the shared copy: data_batch_1, 3, 4 and 5), in order, and the test batch, equal a plain
    pickle reading of them (the trusted reference reader, on trusted test data)."""
    train, test = load_dataset("cifar10", cifar_dir)
    folder = cifar_dir / "cifar-10-batches-py"

    def plain(name):
        with open(folder / name, "rb") as f:
            ref = pickle.load(f, encoding="bytes")
        return np.asarray(ref[b"data"]).reshape(-1, 3, 32, 32), list(ref[b"labels"])

    batches = [plain(p.name) for p in sorted(folder.glob("data_batch_[1-5]"))]
    assert len(train) == 10_000 * len(batches) and len(test) == 10_000 and train.images.shape[1:] == (3, 32, 32)
    assert float(train.images.min()) >= 0 and float(train.images.max()) <= 1
    assert torch.equal((train.images * 255).round().to(torch.uint8), torch.from_numpy(np.concatenate([b[0] for b in batches])))
    assert train.labels.tolist() == [label for b in batches for label in b[1]]
    data, labels = plain("test_batch")
    assert torch.equal((test.images * 255).round().to(torch.uint8), torch.from_numpy(data))
    assert test.labels.tolist() == labels


def _write_batch(path, data, labels):
    with open(path, "wb") as f:
        pickle.dump({"batch_label": "x", "labels": list(labels), "data": data, "filenames": []}, f, protocol=2)


def test_cifar10_reads_whatever_batches_exist_in_the_original_layout(tmp_path):
    # generated batches in the original python layout: rows are 1024 R, 1024 G, 1024 B values
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    d1, d3, dt = (rng.integers(0, 256, (n, 3072), dtype=np.uint8) for n in (5, 3, 4))
    _write_batch(folder / "data_batch_1", d1, [0, 1, 2, 3, 4])
    _write_batch(folder / "data_batch_3", d3, [7, 8, 9])
    _write_batch(folder / "test_batch", dt, [1, 1, 2, 2])
    train, test = load_dataset("cifar10", tmp_path)
    assert len(train) == 8 and len(test) == 4
    assert train.labels.tolist() == [0, 1, 2, 3, 4, 7, 8, 9]
    # pixel (row 2, col 5) of channel G of the first image is byte 1024 + 2*32 + 5
    assert round(float(train.images[0, 1, 2, 5]) * 255) == d1[0, 1024 + 2 * 32 + 5]
    # the folder itself may be given too
    assert len(load_dataset("cifar10", folder)[0]) == 8


def test_cifar10_refuses_a_pickle_that_builds_anything_but_arrays(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "test_batch"):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": Evil(), "labels": [0]}, f, protocol=2)
    with pytest.raises(UserError, match=r"refusing to load \w+\.print"):
        load_dataset("cifar10", tmp_path)
    assert "owned" not in capsys.readouterr().out


def test_missing_data_without_download_says_how_to_fix(tmp_path):
    for name in ("cifar10", "svhn"):
        with pytest.raises(UserError, match="--download"):
            load_dataset(name, tmp_path / "nothing")


def test_download_goes_through_torchvision_only_when_asked(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    calls = []

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            folder = tmp_path / "cifar-10-batches-py"
            folder.mkdir(exist_ok=True)
            data = np.zeros((2, 3072), dtype=np.uint8)
            _write_batch(folder / ("data_batch_1" if train else "test_batch"), data, [3, 4])

    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR10)
    train, test = load_dataset("cifar10", tmp_path, download=True)
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    assert len(train) == 2 and len(test) == 2


def _write_svhn(path, n, seed):
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
    savemat(path, {"X": x, "y": y})
    return x, y


def test_svhn_reads_generated_mat_files_in_the_original_layout(tmp_path):
    # No real SVHN copy exists offline: these .mat files are GENERATED with random pixels,
    # in the original layout (X uint8 (32, 32, 3, N); y (N, 1) with 10 meaning digit 0).
    x, y = _write_svhn(tmp_path / "train_32x32.mat", 7, 0)
    _write_svhn(tmp_path / "test_32x32.mat", 5, 1)
    train, test = load_dataset("svhn", tmp_path)
    assert train.images.shape == (7, 3, 32, 32) and len(test) == 5
    assert train.labels.tolist() == [0 if v == 10 else int(v) for v in y[:, 0]]
    n, c, i, j = 4, 2, 10, 17
    assert round(float(train.images[n, c, i, j]) * 255) == x[i, j, c, n]


def test_svhn_wrong_layout_is_a_user_error(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((28, 28, 1, 3), np.uint8), "y": np.ones((3, 1), np.uint8)})
    _write_svhn(tmp_path / "test_32x32.mat", 2, 0)
    with pytest.raises(UserError, match="not in the 32x32 cropped-digit layout"):
        load_dataset("svhn", tmp_path)


def test_every_dataset_declares_consistent_normalisation():
    for info in DATASETS.values():
        assert len(info.mean) == len(info.std) == info.shape[0]
        assert all(s > 0 for s in info.std)
