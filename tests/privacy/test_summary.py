"""One summary, three faces (privacy.summary): the CLI's table, ``AuditResult.summary()`` and ``to_frame()`` show the same
columns, the calibrated accuracy first; and a model that cannot leak reads as chance in each of them and in the report's
first finding (the case of a new user whose no-leak model's audit began "inference accuracy 54.5% [52.9, 57.6]")."""

from __future__ import annotations

import json

import pytest

from robustmia.privacy.results import AuditResult
from robustmia.privacy.summary import COLUMNS
from tests.conftest import cli

ATTACKS = "confidence,loss,entropy,modified-entropy"


@pytest.fixture(scope="module")
def no_leak(tmp_path_factory):
    """A digits MLP trained on half the train split (449 members) for one epoch at learning rate 1e-6: it cannot leak."""
    root = tmp_path_factory.mktemp("no-leak")
    r = cli("train", "--model", "digits-mlp", "--train-size", "449", "--epochs", "1", "--lr", "1e-6", "--out", str(root / "run"), "--quiet")
    assert r.returncode == 0, r.stderr
    return root / "run"


def test_a_model_that_cannot_leak_reads_as_chance_in_the_cli_row_and_the_first_finding(no_leak):
    r = cli("attack", str(no_leak), "--attacks", ATTACKS, "--json")
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    confidence = next(rec for rec in records if rec["attack"] == "confidence")
    assert confidence["inference_accuracy"] > 0.5  # the oracle picks its threshold on these examples: above 50% by construction
    lo, hi = confidence["calibrated"]["ci95"]
    assert lo <= 0.5 <= hi  # the headline covers chance
    assert confidence["chance"]["p_value"] >= 0.05 / len(records)  # and the test calls it chance
    table = cli("attack", str(no_leak), "--attacks", ATTACKS).stdout
    row = next(line for line in table.splitlines() if "│ confidence " in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[2].startswith(f"{confidence['calibrated']['inference_accuracy']:.4f} [") and cells[3].startswith("chance (p = ")
    assert cli("report", str(no_leak)).returncode == 0
    first = (no_leak / "report" / "findings.md").read_text().split("\n\n")[0]
    assert "0 of 4 attacks are beyond chance" in first and "[" not in first  # no interval that could read as a leak


def test_the_summary_the_cli_and_the_frame_show_the_same_columns(no_leak):
    cli("attack", str(no_leak), "--attacks", ATTACKS, "--quiet")
    result = AuditResult.load(next((no_leak / "audit").iterdir()))
    text = result.summary()
    header = text.splitlines()[0]
    assert [c for c in COLUMNS if c in header] == list(COLUMNS)
    table = cli("attack", str(no_leak), "--attacks", ATTACKS).stdout
    assert all(c in table for c in COLUMNS)
    for line in ("calibrated: the threshold chosen on other data", "oracle: the paper's accuracy"):
        assert line in text and line in table  # the notes too
    frame = result.to_frame()
    assert list(frame.columns) == list(COLUMNS) and len(frame) == len(result.attacks)
    chosen = result.to_frame(columns=["attack", "accuracy (calibrated) [95% CI]"])
    assert list(chosen.columns) == ["attack", "accuracy (calibrated) [95% CI]"]
    assert result.summary(columns=["attack", "chance"]).splitlines()[0].split() == ["attack", "chance"]
    with pytest.raises(ValueError, match="unknown column"):
        result.summary(columns=["nope"])


def test_an_audit_saved_before_the_calibrated_headline_gets_it_from_its_scores(no_leak, tmp_path):
    import shutil

    cli("attack", str(no_leak), "--attacks", ATTACKS, "--quiet")
    folder = next((no_leak / "audit").iterdir())
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    data = json.loads((old / "attacks.json").read_text())
    for record in data["attacks"]:
        del record["calibrated"]
    (old / "attacks.json").write_text(json.dumps(data))
    now, then = AuditResult.load(folder), AuditResult.load(old)
    assert [a.metrics.calibrated for a in then.attacks] == [a.metrics.calibrated for a in now.attacks]
    assert then.summary() == now.summary()
