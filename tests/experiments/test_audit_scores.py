"""`robustmia audit-scores`: any black-box model from a file of its predictions."""

import json
import pickle

import numpy as np
import pytest

from robustmia.privacy.metrics import evaluate_scores
from tests.conftest import assert_one_line_error


def _data(n=400, c=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    member = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    logits = rng.normal(0, 1, (n, c))
    logits[np.arange(n), labels] += 1 + member
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return labels, member, logits, probs


def test_audit_scores_matches_direct_metrics(tmp_path, run_main):
    labels, member, logits, probs = _data()
    np.savez(tmp_path / "p.npz", labels=labels, member=member, probs=probs)
    np.savez(tmp_path / "l.npz", labels=labels, member=member, logits=logits)
    code, out_p, err = run_main("audit-scores", str(tmp_path / "p.npz"), "--json", "--bootstrap", "50")
    assert code == 0, err
    code, out_l, err = run_main("audit-scores", str(tmp_path / "l.npz"), "--json", "--bootstrap", "50")
    assert code == 0, err
    rp, rl = json.loads(out_p), json.loads(out_l)
    assert [r["attack"] for r in rp] == ["confidence", "loss", "entropy", "modified-entropy"]
    conf = probs[np.arange(len(labels)), labels]
    direct = evaluate_scores(conf, member, n_bootstrap=0)
    assert abs(rp[0]["roc_auc"] - direct.roc_auc) < 1e-9 and abs(rl[0]["roc_auc"] - direct.roc_auc) < 1e-9
    assert rp[0]["n_members"] == 200 and rp[0]["threshold_selection"] == "oracle"


def _write(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda d: d.pop("member"), "lacks the array(s) member"),
        (lambda d: d.pop("probs"), "probs or logits"),
        (lambda d: d.update(logits=d["probs"]), "probs or logits (exactly one)"),
        (lambda d: d.update(labels=d["labels"][:-1]), "same length"),
        (lambda d: d["probs"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda d: d["probs"].__setitem__((1, 1), np.inf), "infinite"),
        (lambda d: d["probs"].__setitem__((0, 0), -0.1), "negative"),
        (lambda d: d.update(probs=d["probs"] * 1.1), "sum to 1 (tolerance 0.001)"),
        (lambda d: d["labels"].__setitem__(0, 5), "labels must lie in [0, 5)"),
        (lambda d: d["labels"].__setitem__(0, -1), "labels must lie in [0, 5)"),
        (lambda d: d.update(member=np.ones_like(d["member"])), "at least one member and one non-member"),
        (lambda d: d.update(member=np.zeros_like(d["member"])), "at least one member and one non-member"),
    ],
)
def test_bad_prediction_files(tmp_path, run_main, mutate, fragment):
    labels, member, _, probs = _data()
    d = {"labels": labels.copy(), "member": member.copy(), "probs": probs.copy()}
    mutate(d)
    code, out, err = run_main("audit-scores", _write(tmp_path, **d))
    assert_one_line_error(code, out, err, fragment)
    assert out == ""


def test_pickle_inside_npz_is_never_loaded(tmp_path, run_main):
    labels, member, _, probs = _data()
    marker = tmp_path / "unpickled"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(tmp_path / "evil.npz", labels=labels, member=member, probs=np.array([Bomb()], dtype=object))
    assert_one_line_error(*run_main("audit-scores", str(tmp_path / "evil.npz")), "pickled")
    assert not marker.exists()
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"labels": labels}))
    assert_one_line_error(*run_main("audit-scores", str(tmp_path / "plain.pkl")), "not a readable .npz")
    assert_one_line_error(*run_main("audit-scores", str(tmp_path / "missing.npz")), "does not exist")
