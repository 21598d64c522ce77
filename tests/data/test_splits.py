import numpy as np
import pytest

from robustmia.data.splits import load_split, make_split, save_split
from robustmia.errors import UserError


def test_split_is_deterministic_disjoint_and_balanced():
    a = make_split(1000, 800, train_size=300, seed=4)
    b = make_split(1000, 800, train_size=300, seed=4)
    c = make_split(1000, 800, train_size=300, seed=5)
    for name in ("members", "nonmembers", "pool_train", "pool_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.members, c.members)
    assert len(a.members) == len(a.nonmembers) == 300
    assert np.intersect1d(a.members, a.pool_train).size == 0
    assert np.intersect1d(a.nonmembers, a.pool_test).size == 0
    assert np.array_equal(np.sort(np.concatenate([a.members, a.pool_train])), np.arange(1000))
    assert np.array_equal(np.sort(np.concatenate([a.nonmembers, a.pool_test])), np.arange(800))


def test_nonmembers_are_capped_by_the_test_split():
    s = make_split(898, 899)
    assert len(s.members) == 898 and len(s.nonmembers) == 898 and len(s.pool_test) == 1


def test_train_size_out_of_range():
    with pytest.raises(UserError, match="train_size 2000"):
        make_split(1000, 1000, train_size=2000)


def test_round_trip_and_disjointness_checked_on_load(tmp_path):
    s = make_split(100, 100, train_size=40, seed=1)
    save_split(s, tmp_path / "split.npz")
    t = load_split(tmp_path / "split.npz")
    assert np.array_equal(s.members, t.members) and (t.n_train, t.n_test, t.seed) == (100, 100, 1)
    # a tampered file whose pool overlaps the members is refused
    bad = {k: getattr(s, k) for k in ("members", "nonmembers", "pool_train", "pool_test")}
    bad["pool_train"] = np.concatenate([bad["pool_train"], s.members[:1]])
    np.savez(tmp_path / "bad.npz", **bad, n_train=100, n_test=100, seed=1)
    with pytest.raises(UserError, match="members and pool_train overlap"):
        load_split(tmp_path / "bad.npz")


def test_pickled_split_file_is_refused(tmp_path):
    np.savez(tmp_path / "p.npz", members=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="cannot read split file"):
        load_split(tmp_path / "p.npz")
