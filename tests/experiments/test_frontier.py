"""The frontier study end to end at test scale: DP-SGD, DP-PGD and early-stopped targets beside natural and
PGD ones, the frontier table and figure, the soundness check of every DP target, and the report in
headless Chromium. (`robustmia reproduce frontier`, the full preset, is timed in the README.)"""

import json
import shutil
import subprocess

import pytest

from tests.conftest import cli
from tests.experiments.test_study import _chromium

pytest.importorskip("opacus", reason="DP-SGD needs the dp extra: pip install 'robustmia[dp]'")

SPEC = """
name: mini-frontier
description: the frontier at test scale
frontier: true
defaults: {dataset: digits, model: digits-mlp, train_size: 100, batch_size: 20, epochs: 6}
targets:
  - {name: natural, tables: [I], train: {method: natural, eps: 0.1}}
  - {name: pgd, tables: [I], train: {method: pgd, eps: 0.1}}
  - {name: pgd-early, tables: [II], train: {method: pgd, eps: 0.1, early_stop: true, early_stop_holdout: 50, early_stop_steps: 3}}
  - {name: dpsgd-4, tables: [], train: {method: dpsgd, eps: 0.1, dp_noise: 4.0, lr: 0.3, momentum: 0.0},
     dp_audit: {canaries: {count: 60, kind: noise}, attacks: [confidence]}}
  - {name: dp-pgd, tables: [], train: {method: dp_pgd, eps: 0.1, dp_noise: 2.0, lr: 0.3, momentum: 0.0},
     dp_audit: {canaries: {count: 60, kind: noise}, attacks: [confidence]}}
evaluation: {attack_steps: 5}
audit: {attacks: [confidence, lira], references: 4, bootstrap: 50}
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("frontier")
    (root / "spec.yaml").write_text(SPEC)
    r = cli("run", str(root / "spec.yaml"), "--out", str(root / "out"), "--quiet")
    assert r.returncode == 0, r.stderr
    return root / "out"


def test_frontier_study_writes_the_frontier_and_checks_every_dp_target(study):
    results = {r["name"]: r for r in json.loads((study / "results.json").read_text())}
    dp = results["dpsgd-4"]["dp"]
    included = results["dpsgd-4"]["dp_audit"][0]["included"]  # canaries whose coins put them in the training set
    assert dp["epsilon"] > 0 and dp["delta"] == 1e-5 and dp["steps"] == 6 * -(-(100 + included) // 20) and dp["sampling"] == "Poisson"
    assert all(a["epsilon_estimate_one_run"]["delta"] == 1e-5 for a in results["dpsgd-4"]["attacks"])
    assert [a["delta"] for a in results["dpsgd-4"]["dp_audit"]] == [1e-5] and results["dpsgd-4"]["dp_audit"][0]["m"] == 60
    assert results["pgd-early"]["early_stop"]["final"] and 1 <= results["pgd-early"]["early_stop"]["epoch"] <= 6
    table = json.loads((study / "report" / "tables" / "frontier.json").read_text())
    rows = {row[0]: row for row in table["rows"]}
    assert set(rows) == set(results) and any(row[-1] == "yes" for row in rows.values())
    assert rows["dpsgd-4"][3].startswith(f"{dp['epsilon']:.2f}")
    t2 = json.loads((study / "report" / "tables" / "table2.json").read_text())
    assert "early-stopped at epoch" in t2["rows"][0][2] and len(t2["columns"]) == 18
    assert any("(DP epsilon" in row[0] for row in json.loads((study / "report" / "tables" / "modern.json").read_text())["rows"])
    assert {"frontier.png", "frontier.svg"} <= {p.name for p in (study / "report" / "figures").iterdir()}
    findings = (study / "report" / "findings.md").read_text()
    assert "On the frontier of adversarial test accuracy" in findings
    assert "Soundness, dpsgd-4" in findings and "Soundness, dp-pgd" in findings and "consistent, as it must be" in findings
    assert "The DP target with the most noise, dpsgd-4" in findings
    assert not json.loads((study / "report" / "report.json").read_text())["warnings"]


def test_an_attack_proving_more_than_the_accountant_is_reported_as_a_bug(study, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    results = json.loads((copy / "results.json").read_text())
    target = next(r for r in results if r["name"] == "dpsgd-4")
    # the audit's statement over its attacks (family-wise) above the accountant
    target["dp_audit"][0]["family_bound"]["epsilon_lower_bound"] = target["dp"]["epsilon"] + 0.5
    (copy / "results.json").write_text(json.dumps(results))
    r = cli("report", str(copy))
    assert r.returncode == 0, r.stderr
    warnings = json.loads((copy / "report" / "report.json").read_text())["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("dpsgd-4: BUG: the one-run DP audit")
    html = (copy / "report" / "report.html").read_text()
    assert "<h2>Warnings</h2>" in html and "BUG: the one-run DP audit" in html
    assert "1 of them exceed it, which is a bug" in (copy / "report" / "findings.md").read_text()
    target["dp_audit"][0]["family_bound"]["epsilon_lower_bound"] = 0.0
    target["attacks"][0]["epsilon_estimate_one_run"]["value"] = target["dp"]["epsilon"] + 0.5  # a per-run estimate: no bound, no bug
    (copy / "results.json").write_text(json.dumps(results))
    assert cli("report", str(copy)).returncode == 0
    assert not json.loads((copy / "report" / "report.json").read_text())["warnings"]


def test_frontier_report_renders_in_headless_chromium(study, tmp_path):
    browser = _chromium()
    page = tmp_path / "report.html"
    probe = """<script>window.addEventListener('load', () => {
      const imgs = [...document.images];
      document.body.setAttribute('data-probe', JSON.stringify({images: imgs.length,
        rendered: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
        frontier: imgs.filter(i => i.alt === 'frontier' && i.naturalWidth > 400).length}));
    });</script></body>"""
    page.write_text((study / "report" / "report.html").read_text().replace("</body>", probe))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True).stdout
    data = json.loads(dom.split('data-probe="', 1)[1].split('"', 1)[0].replace("&quot;", '"'))
    assert data["frontier"] == 1 and data["rendered"] == data["images"] >= 10, data
