"""`robustmia run`: a small study end to end, resume after a kill, report.html in Chromium."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, assert_one_line_error, cli

SPEC = """
name: mini
description: a small study for the tests
defaults: {dataset: digits, model: digits-mlp, train_size: 100, batch_size: 32, epochs: 10}
targets:
  - {name: natural, tables: [I, II], train: {method: natural, eps: 0.1}}
  - name: pgd-0.1
    tables: [I, II]
    train: {method: pgd, eps: 0.1}
    audit: {attacks: [confidence, loss, adv-confidence, lira, rmia, shadow, label-boundary, grad-norm, grad-norm-lira, qmia],
            boundary_bisections: 4, probe_steps: 4}
  - {name: pgd-0.2, tables: [II], train: {method: pgd, eps: 0.2}}
  - {name: ibp-0.1, tables: [III], train: {method: ibp, eps: 0.1}, audit: {attacks: [confidence, lira, verified-margin, verified-margin-lira]}}
evaluation: {attack_steps: 10}
audit: {attacks: [confidence, loss, adv-confidence, lira, rmia, shadow], threshold: both, references: 4, bootstrap: 50}
track_every: 5
"""


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "mini.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def study(spec_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "out"
    r = cli("run", str(spec_file), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def _tables(out: Path) -> dict:
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "report" / "tables").glob("*.json"))}


def test_study_writes_tables_figures_and_report(study):
    report = study / "report"
    tables = _tables(study)
    assert set(tables) == {"table1.json", "table2.json", "table3.json", "modern.json", "beyond.json"}
    # the paper's tables gain no columns; the attacks beyond the seed have their own table, per target and selection
    assert len(tables["table1.json"]["columns"]) == 18
    beyond = {(row[0], row[1], row[3]) for row in tables["beyond.json"]["rows"]}
    assert {("pgd-0.1", "label-boundary", "oracle"), ("pgd-0.1", "label-boundary", "shadow"), ("pgd-0.1", "grad-norm-lira", "oracle"),
            ("pgd-0.1", "qmia", "quantile"), ("ibp-0.1", "verified-margin", "shadow"), ("ibp-0.1", "verified-margin-lira", "oracle")} <= beyond
    assert not any(row[0] in ("natural", "pgd-0.2") for row in tables["beyond.json"]["rows"])  # only where the target's audit asks
    assert any("queries 26 per example" in row[8] for row in tables["beyond.json"]["rows"])  # 1 + 5 radii x (4 PGD steps + the last point)
    t2 = tables["table2.json"]
    assert [row[2] for row in t2["rows"]] == ["natural", "pgd", "pgd"] * 2  # oracle rows, then shadow rows
    assert all(row[16] in ("oracle", "shadow") for row in t2["rows"])
    assert tables["table3.json"]["rows"][0][9] != ""  # verified test accuracy of the provable model
    for name in ("table1.md", "table1.csv", "table1.tex", "modern.md"):
        assert (report / "tables" / name).stat().st_size > 100
    figures = {p.name for p in (report / "figures").iterdir()}
    for stem in ("fig1_loss_histograms", "fig2_precision_recall", "fig3_accuracy_over_training",
                 "fig4_inference_over_training", "roc_natural", "roc_pgd-0.1"):
        assert {f"{stem}.png", f"{stem}.svg"} <= figures
    findings = (report / "findings.md").read_text()
    assert "PGD training at eps 0.1" in findings and "95% intervals" in findings and "provable model ibp-0.1" in findings
    assert "on pgd-0.1 (pgd, eps 0.1)" in findings and "TPR at 1% FPR" in findings  # the new attacks against the seed's
    assert "exposure moves between natural and its twin pgd-0.1" in findings
    assert {"exposure_pgd-0.1.png", "exposure_pgd-0.1.svg"} <= figures
    results = json.loads((study / "results.json").read_text())
    tracked = [x for x in results[1]["log"] if x.get("track")]
    assert [x["epoch"] for x in tracked] == [5, 10]
    assert (study / "study.log").read_text().count("train ") == 4


def test_the_study_log_phases_json_and_report_give_each_phases_time_and_the_device(study):
    phases = json.loads((study / "phases.json").read_text())
    assert phases["device"].startswith("CPU (")
    assert [p["name"] for p in phases["phases"]] == ["training", "evaluation and reference models", "audits",
                                                     "one-run DP audits and results", "report"]
    assert all(p["seconds"] >= 0 for p in phases["phases"])
    log = (study / "study.log").read_text()
    assert all(f"{p['name']}: " in log for p in phases["phases"]) and f"on {phases['device']}" in log
    html = (study / "report" / "report.html").read_text()
    assert "by phase of the study" in html and "training " in html


def test_figures_3_and_4_say_how_they_measured_and_how_that_differs_from_the_tables(study):
    captions = json.loads((study / "report" / "figures" / "figures.json").read_text())
    fig3, fig4 = captions["fig3_accuracy_over_training"], captions["fig4_inference_over_training"]
    results = json.loads((study / "results.json").read_text())
    n = next(x for x in results[1]["log"] if x.get("track"))["track"]["n"]
    assert f"first {n} members and the first {n} test images" in fig3 and "PGD-10" in fig3 and "every 5 epochs" in fig3
    steps = results[1]["evaluation"]["perturbation"]["steps"]
    assert "Tables I-II" in fig3 and "differ" in fig3 and f"with PGD-{steps} on the evaluation's examples" in fig3
    conf = next(a for a in results[0]["attacks"] if a["attack"] == "confidence" and a["threshold_selection"] == "oracle")
    assert f"{n} + {n} examples" in fig4 and f"{conf['n_members']} + {conf['n_nonmembers']} examples" in fig4 and "differ" in fig4
    html = (study / "report" / "report.html").read_text()
    assert "fig3_accuracy_over_training: Fig. 3: lines:" in html


def test_rerunning_trains_nothing_and_gives_the_same_tables(study, spec_file):
    before = {p: p.stat().st_mtime_ns for p in study.glob("runs/*/checkpoint/model.safetensors")}
    tables = _tables(study)
    r = cli("run", str(spec_file), "--out", str(study), "--quiet")
    assert r.returncode == 0, r.stderr
    assert {p: p.stat().st_mtime_ns for p in study.glob("runs/*/checkpoint/model.safetensors")} == before
    assert _tables(study) == tables


def test_killed_study_resumes_to_the_same_tables(study, spec_file, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "robustmia", "run", str(spec_file), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len(list(out.glob("runs/*/checkpoint/meta.json"))) >= 2:  # the first target is done, the second under way
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the study finished before it could be killed"
    assert not (out / "results.json").exists()
    r = cli("run", str(spec_file), "--out", str(out), "--quiet")
    assert r.returncode == 2 and "--resume" in r.stderr  # an interrupted study is not silently restarted
    r = cli("run", str(spec_file), "--out", str(out), "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    assert _tables(out) == _tables(study)


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda s: s.replace("references: 4", "referenses: 4"), "unknown key 'audit.referenses'"),
        (lambda s: s.replace("method: pgd, eps: 0.2", "method: pgd, eps: 2"), "write 8/255, not 8"),
        (lambda s: s.replace("dataset: digits,", "dataset: cifar10, data_dir: /nonexistent/cifar,"), "CIFAR-10 not found in /nonexistent/cifar"),
    ],
)
def test_bad_specs_fail_fast_in_one_line_before_any_training(tmp_path, edit, fragment):
    spec = tmp_path / "bad.yaml"
    spec.write_text(edit(SPEC))
    out = tmp_path / "out"
    probe = (
        "import sys\nfrom robustmia.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
        "    print('torch' in sys.modules, e.code)\n"
    )
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", probe, "run", str(spec), "--out", str(out)], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert r.stdout.split() == ["False", "2"], (r.stdout, r.stderr)  # refused before torch was even imported
    assert_one_line_error(2, "", r.stderr, fragment, str(spec))
    assert not out.exists()
    print(f"spec refused in {elapsed:.2f} s")


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("CI must install Debian's chromium (apt-get install chromium) for the report test")
    pytest.skip("headless Chromium is not installed: apt-get install chromium")


def test_report_renders_in_headless_chromium(study, tmp_path):
    browser = _chromium()
    page = tmp_path / "report.html"
    probe = """<script>window.addEventListener('load', () => {
      const imgs = [...document.images];
      const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
      document.body.setAttribute('data-probe', JSON.stringify({images: imgs.length, rendered: ok,
        tables: document.querySelectorAll('table').length, rows: document.querySelectorAll('tbody tr').length,
        thumbs: document.querySelectorAll('figure.thumb img').length,
        thumbs_drawn: [...document.querySelectorAll('figure.thumb img')].filter(i => i.complete && i.naturalWidth > 0 && i.width === 64).length,
        sideways: [...document.querySelectorAll('.scroll')].filter(d => d.scrollWidth > d.clientWidth + 1).length,
        page_sideways: document.documentElement.scrollWidth > window.innerWidth,
        wide: [...document.querySelectorAll('figure.wide img')].map(i => [i.alt, Math.round(i.getBoundingClientRect().width), i.naturalWidth])}));
    });</script></body>"""
    page.write_text((study / "report" / "report.html").read_text().replace("</body>", probe))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--window-size=1400,3000", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True).stdout
    marker = 'data-probe="'
    assert marker in dom, dom[:500]
    probe_data = json.loads(dom.split(marker, 1)[1].split('"', 1)[0].replace("&quot;", '"'))
    assert probe_data["images"] >= 8 + 4 * 16 and probe_data["rendered"] == probe_data["images"], probe_data  # figures + exposure grids
    assert probe_data["tables"] == 5 and probe_data["rows"] > 10
    assert probe_data["thumbs"] == 4 * 16 and probe_data["thumbs_drawn"] == probe_data["thumbs"], probe_data
    # at 1400 px no table scrolls sideways (their headers wrap), and Figs. 1 and 3 are drawn at the page's width, a
    # grid of at most three panels a row, so that each panel is at least 360 px wide on the page
    assert probe_data["sideways"] == 0 and not probe_data["page_sideways"], probe_data
    wide = {alt: (shown, natural) for alt, shown, natural in probe_data["wide"]}
    assert set(wide) == {"fig1_loss_histograms", "fig3_accuracy_over_training"}, wide
    from robustmia.reporting.figures import PANEL_COLUMNS

    n = len(json.loads((study / "results.json").read_text()))
    columns = min(n, PANEL_COLUMNS)
    for alt, (shown, natural) in wide.items():
        assert shown >= 1000 or shown == natural, (alt, shown, natural)  # page width, or its full size if smaller
        assert shown / columns >= 360, (alt, shown, columns)
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "report.png"
    subprocess.run([browser, *flags, "--window-size=1400,4000", f"--screenshot={shot}", (study / "report" / "report.html").as_uri()],
                   capture_output=True)
    assert shot.stat().st_size > 50_000  # a real picture of the page, kept as a test artifact


def test_every_preset_is_a_valid_spec(tmp_path, monkeypatch):
    from robustmia.experiments.presets import list_presets, preset_path
    from robustmia.experiments.spec import load_spec
    from robustmia.validation import read_yaml

    # placeholders where the datasets would lie (only their presence is checked here)
    (tmp_path / "cifar10" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch").write_bytes(b"")
    (tmp_path / "svhn").mkdir()
    for name in ("train_32x32.mat", "test_32x32.mat"):
        (tmp_path / "svhn" / name).write_bytes(b"")
    # and where RobustBench's layout keeps a published model's checkpoint
    monkeypatch.setenv("ROBUSTMIA_MODEL_DIR", str(tmp_path / "models"))
    presets = list_presets()
    for name in presets:
        for target in read_yaml(preset_path(name))["targets"]:
            arch = (target.get("external") or {}).get("arch", "")
            if arch.startswith("robustbench:"):
                folder = tmp_path / "models" / target["external"]["dataset"] / target["external"].get("threat_model", "Linf")
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{arch.split(':', 1)[1]}.pt").write_bytes(b"")
    assert {"quick", "cifar10-cpu", "paper-table1", "paper-table2", "paper-table3"} <= set(presets)
    for name in presets:
        spec, configs = load_spec(preset_path(name), data_dir=str(tmp_path))
        assert len(configs) + sum(t.external is not None for t in spec.targets) == len(spec.targets) > 0
        assert all(c.dataset == "digits" or c.data_dir.startswith(str(tmp_path)) for c in configs.values())
        assert all(t.external.data_dir == str(tmp_path) for t in spec.targets if t.external is not None)
    _, table1 = load_spec(preset_path("paper-table1"), data_dir=str(tmp_path))
    assert table1["cifar10-pgd8"].model == "wrn-34-10" and abs(table1["cifar10-pgd8"].eps - 8 / 255) < 1e-12
    assert table1["svhn-pgd4"].model == "wrn-34-4" and table1["cifar10-pgd8"].lr_drops == [(40000, 0.01), (60000, 0.001)]
