"""The public API at the package root, and the layout rules the code keeps."""

import ast
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.conftest import REPO


def test_import_robustmia_is_cheap_and_exports_the_api():
    probe = ("import sys, robustmia\nassert 'torch' not in sys.modules\n"
             "from robustmia import audit, train, evaluate, run_study, report, AuditResult, AttackResult\nprint('ok')")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.stdout.strip() == "ok", r.stderr


def test_train_evaluate_audit_and_save_through_the_api(tmp_path):
    from robustmia import AuditResult, audit, evaluate, train

    record = train({"dataset": "digits", "model": "digits-mlp", "epochs": 3, "train_size": 200, "eps": 0.1}, tmp_path / "run")
    assert record["epoch"] == 3 and 0 <= record["test_accuracy"] <= 1
    scores = evaluate(tmp_path / "run", attack_steps=3)
    assert scores["perturbation"]["eps"] == 0.1 and scores["adv_test_accuracy"] <= scores["test_accuracy"]
    result = audit(tmp_path / "run", attacks="confidence,adv-loss", eval_size=150, bootstrap=0, device="cpu")
    assert isinstance(result, AuditResult) and [a.attack for a in result.attacks] == ["confidence", "adv-loss"]
    confidence = result.get("confidence")
    assert confidence.to_dict()["roc_auc"] == pytest.approx(roc_auc_score(result.member, confidence.scores), abs=1e-12)
    assert result.get("adv-loss").to_dict()["perturbation"]["steps"] == 20
    summary = result.summary()  # the CLI's table: the calibrated accuracy first (tests/privacy/test_summary.py compares them)
    assert "accuracy (calibrated) [95% CI]" in summary.splitlines()[0] and "\nconfidence " in summary
    back = AuditResult.load(result.save(tmp_path / "saved"))
    assert back.records() == result.records()
    assert all(np.array_equal(a.scores, b.scores) for a, b in zip(back.attacks, result.attacks))
    fpr, tpr = back.get("confidence").roc()
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1


SRC = REPO / "src" / "robustmia"


def test_the_cli_is_thin_and_functions_are_short():
    assert len((SRC / "cli.py").read_text().splitlines()) <= 300
    long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                if "long" not in (ast.get_docstring(node) or ""):  # a long function says why in its docstring
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}")
    assert not long, long
