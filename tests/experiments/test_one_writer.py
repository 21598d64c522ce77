"""One study folder, one writer; damaged caches recover; results.json is a function of the spec.

- two `robustmia run` on one folder at once: one runs, the other refuses in one line naming the
  holder's PID, and the study equals a lone run byte for byte (results.json is free of clock time);
- a run holding the lock killed with SIGKILL is resumed at once (the lock died with it);
- a half-written log line and a damaged cached evaluation are recovered from on --resume."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli

SPEC = """
name: writer
defaults: {dataset: digits, model: digits-mlp, train_size: 150, batch_size: 32, epochs: 12}
targets:
  - {name: natural, tables: [I], train: {method: natural, eps: 0.1}}
  - {name: pgd, tables: [I], train: {method: pgd, eps: 0.1, attack_steps: 3}}
evaluation: {attack_steps: 5}
audit: {attacks: [confidence, adv-confidence], bootstrap: 30}
"""


@pytest.fixture(scope="module")
def lone(tmp_path_factory):
    root = tmp_path_factory.mktemp("lone")
    (root / "spec.yaml").write_text(SPEC)
    r = cli("run", str(root / "spec.yaml"), "--out", str(root / "study"), "--quiet", "--threads", "1")
    assert r.returncode == 0, r.stderr
    return root


def _start(spec: Path, out: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robustmia", "run", str(spec), "--out", str(out), "--quiet", "--threads", "1", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None and not predicate():
        time.sleep(0.02)
    assert proc.poll() is None, "the study finished before the test could act"


def test_two_runs_at_once_one_refuses_and_results_equal_a_lone_run(lone, tmp_path):
    spec, out = lone / "spec.yaml", tmp_path / "study"
    first = _start(spec, out)
    _wait_for(lambda: (out / ".owner").exists(), first)
    second = cli("run", str(spec), "--out", str(out), "--quiet")
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert f"in use by another robustmia process (PID {first.pid})" in second.stderr
    assert first.wait() == 0, first.stderr.read()
    # two uninterrupted runs of one spec: byte-identical results (no wall-clock time in them)
    assert (out / "results.json").read_bytes() == (lone / "study" / "results.json").read_bytes()
    assert all("seconds" not in json.loads(line) for line in next(out.glob("runs/*/log.jsonl")).read_text().splitlines())


def test_a_killed_holder_is_resumed_at_once(lone, tmp_path):
    spec, out = lone / "spec.yaml", tmp_path / "study"
    first = _start(spec, out)
    _wait_for(lambda: any(out.glob("runs/*.partial/checkpoint/meta.json")), first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    again = cli("run", str(spec), "--out", str(out), "--quiet", "--threads", "1", "--resume")
    assert again.returncode == 0, again.stderr
    assert (out / "results.json").read_bytes() == (lone / "study" / "results.json").read_bytes()


def test_a_half_written_log_line_and_a_damaged_evaluation_recover(lone, tmp_path):
    import shutil

    out = tmp_path / "study"
    shutil.copytree(lone / "study", out)
    (out / "results.json").unlink()
    for evaluation in out.glob("runs/*/evaluation-*.json"):
        evaluation.write_text('{"train_accuracy": 0.5, "test_acc')  # a power cut mid-write
    # an interrupted target: its last checkpoint at epoch 12, and a log line half-written after it
    run = next(p for p in out.glob("runs/*") if json.loads((p / "config.json").read_text())["method"] == "pgd")
    log = run / "log.jsonl"
    log.write_text(log.read_text() + '{"epoch": 13, "step": 60, "lr": 0.0')
    r = cli("run", str(lone / "spec.yaml"), "--out", str(out), "--quiet", "--threads", "1", "--resume")
    assert r.returncode == 0, r.stderr
    assert (out / "results.json").read_bytes() == (lone / "study" / "results.json").read_bytes()
    tables = sorted((out / "report" / "tables").glob("*.json"))
    assert tables and all(t.read_bytes() == (lone / "study" / "report" / "tables" / t.name).read_bytes() for t in tables)
