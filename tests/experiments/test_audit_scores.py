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


def test_unbalanced_file_reports_balanced_accuracy(tmp_path, run_main):
    """5,000 members against 1,000 non-members: plain accuracy would reward calling everyone a
    member (83%); the record's inference accuracy is balanced, checked against scikit-learn."""
    from sklearn.metrics import balanced_accuracy_score, precision_score, roc_curve

    rng = np.random.default_rng(3)
    member = np.r_[np.ones(5000, bool), np.zeros(1000, bool)]
    labels = rng.integers(0, 10, 6000)
    logits = rng.normal(0, 1, (6000, 10))
    logits[np.arange(6000), labels] += 1.0 + 0.6 * member
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.savez(tmp_path / "u.npz", labels=labels, member=member, probs=probs)
    code, out, err = run_main("audit-scores", str(tmp_path / "u.npz"), "--json", "--bootstrap", "40")
    assert code == 0, err
    record = json.loads(out)[0]
    conf = probs[np.arange(6000), labels]
    fpr, tpr, thresholds = roc_curve(member, conf, drop_intermediate=False)
    best = int(np.argmax(0.5 * (tpr + 1 - fpr)))
    assert abs(record["inference_accuracy"] - 0.5 * (tpr[best] + 1 - fpr[best])) < 1e-9
    pred = conf >= record["threshold"]
    assert abs(record["inference_accuracy"] - balanced_accuracy_score(member, pred)) < 1e-9
    assert abs(record["precision"] - precision_score(member, pred)) < 1e-9  # the paper's precision, on the sets as given
    assert record["inference_accuracy_is"].startswith("balanced") and record["n_members"] == 5000
    lo, hi = record["ci95"]["inference_accuracy"]
    assert lo <= record["inference_accuracy"] <= hi < 0.83


def test_probabilities_are_scored_as_given_ties_included(tmp_path, run_main):
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels, member, _, probs = _data()
    probs = np.round(probs, 2)  # many exact ties in the true-class probability
    top = probs.argmax(1)
    probs[np.arange(len(probs)), top] += 1 - probs.sum(1)  # rows still sum to 1 (within float rounding)
    np.savez(tmp_path / "t.npz", labels=labels, member=member, probs=probs)
    code, out, err = run_main("audit-scores", str(tmp_path / "t.npz"), "--json", "--bootstrap", "0")
    assert code == 0, err
    conf = probs[np.arange(len(labels)), labels]
    assert len(np.unique(conf)) < len(conf) / 2
    record = json.loads(out)[0]
    assert abs(record["roc_auc"] - roc_auc_score(member, conf)) < 1e-12
    assert abs(record["auprc"] - average_precision_score(member, conf)) < 1e-12


def test_the_table_a_person_reads(tmp_path, run_main):
    labels, member, logits, _ = _data()
    np.savez(tmp_path / "l.npz", labels=labels, member=member, logits=logits)
    code, out, err = run_main("audit-scores", str(tmp_path / "l.npz"), "--bootstrap", "20")
    assert code == 0, err
    assert "modified-entropy" in out and "200 members + 200 non-members; accuracy is balanced" in out
