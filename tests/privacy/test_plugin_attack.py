"""Adding a membership attack is one module that registers it: the attack then appears in the
CLI's choices, passes spec validation, runs in a study and lands in the tables and the report.
Nothing else changes (the module lives outside the package, in a temporary folder)."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO

TOY = '''
import numpy as np
from robustmia.privacy.attacks import AttackScores, register_attack


@register_attack("toy-max-logit", help="a toy attack: the largest logit")
def max_logit(inputs, options):
    return AttackScores(inputs.target["logits"].max(1).astype(np.float64))
'''

SPEC = """
name: toy
description: a study with a plugged-in attack
defaults: {dataset: digits, model: digits-mlp, train_size: 100, batch_size: 32, epochs: 3}
targets:
  - {name: natural, tables: [I], train: {method: natural}}
audit: {attacks: [confidence, toy-max-logit], bootstrap: 20}
"""


def _robustmia(tmp_path, *args, plugin=True):
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    if plugin:
        env["ROBUSTMIA_PLUGINS"] = "toy_attack"
    else:
        env.pop("ROBUSTMIA_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "robustmia", *args], capture_output=True, text=True, env=env)


def test_a_registered_attack_reaches_cli_spec_tables_and_report(tmp_path):
    (tmp_path / "toy_attack.py").write_text(TOY)
    spec = tmp_path / "toy.yaml"
    spec.write_text(SPEC)

    assert "toy-max-logit" not in _robustmia(tmp_path, "attack", "--help", plugin=False).stdout
    assert "toy-max-logit: a toy attack: the largest logit" in _robustmia(tmp_path, "attack", "--help").stdout
    refused = _robustmia(tmp_path, "run", str(spec), "--out", str(tmp_path / "refused"), plugin=False)
    assert refused.returncode == 2 and "unknown attack toy-max-logit" in refused.stderr
    assert not (tmp_path / "refused").exists()

    out = tmp_path / "study"
    r = _robustmia(tmp_path, "run", str(spec), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    modern = json.loads((out / "report" / "tables" / "modern.json").read_text())
    assert sorted(row[1] for row in modern["rows"]) == ["confidence", "toy-max-logit"]  # (the strongest first)
    html = (out / "report" / "report.html").read_text()
    assert html.count("toy-max-logit") >= 1
    record = json.loads((out / "results.json").read_text())[0]["attacks"][1]
    assert record["attack"] == "toy-max-logit" and 0.0 <= record["roc_auc"] <= 1.0


def test_a_broken_plugin_is_one_line(tmp_path):
    (tmp_path / "toy_attack.py").write_text("raise RuntimeError('boom')\n")
    r = _robustmia(tmp_path, "attack", "--help")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "ROBUSTMIA_PLUGINS" in r.stderr, r.stderr


PEEKING = '''
import dataclasses
import numpy as np
from robustmia.privacy.attacks import AttackScores, register_attack

FOUND = []


def _arrays(value, where):
    """Every array reachable from what the attack is given: fields, dict values, list items."""
    if isinstance(value, np.ndarray):
        yield where, value
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _arrays(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _arrays(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _arrays(v, f"{where}[{i}]")


@register_attack("peek", help="looks for the truth in what it is given", threshold=True)
def peek(inputs, options):
    n = len(inputs.labels)
    truth = np.r_[np.ones(n // 2, bool), np.zeros(n - n // 2, bool)]  # the audit's layout: members first
    for where, a in _arrays((inputs, options), "given"):
        if a.shape == truth.shape and a.dtype == bool and (np.array_equal(a, truth) or np.array_equal(a, ~truth)):
            FOUND.append(where)
    if FOUND:
        raise ValueError("the truth is in " + ", ".join(FOUND))
    return AttackScores(inputs.target["confidence"].astype(np.float64), oracle_groups=inputs.labels if options.per_class else None)
'''


def test_no_attack_is_given_the_truth_it_is_scored_against(tmp_path):
    """A plugin that searches everything it is handed (signals, labels, options, reference models' keep masks) for the
    target's membership, under every threshold selection, per class too, finds none: the truth goes to the metrics
    alone, which pick oracle thresholds (per class ones included)."""
    (tmp_path / "peek_attack.py").write_text(PEEKING)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "ROBUSTMIA_PLUGINS": "peek_attack"}
    train = subprocess.run([sys.executable, "-m", "robustmia", "train", "--model", "digits-mlp", "--train-size", "60", "--epochs", "2",
                            "--out", str(tmp_path / "run"), "--quiet"], capture_output=True, text=True, env=env)
    assert train.returncode == 0, train.stderr
    for extra in ((), ("--per-class",), ("--threshold", "both", "--references", "2")):
        r = subprocess.run([sys.executable, "-m", "robustmia", "attack", str(tmp_path / "run"), "--attacks", "peek", "--bootstrap", "0",
                            "--json", *extra], capture_output=True, text=True, env=env)
        assert r.returncode == 0, (extra, r.stderr)
        records = json.loads(r.stdout)
        assert records and all(0 <= rec["inference_accuracy"] <= 1 for rec in records)
