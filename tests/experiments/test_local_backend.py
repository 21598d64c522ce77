"""The local backend's worker processes: a study's tasks two at a time give the tables of one at a time; a user's
mistake, a warning and a dead worker inside a task each come back to the study's process as they should."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, cli

SPEC = """
name: local-mini
description: a small study for the local backend's worker processes
defaults: {dataset: digits, model: digits-mlp, train_size: 120, batch_size: 32, epochs: 8}
targets:
  - {name: natural, tables: [I, II], train: {method: natural, eps: 0.1}}
  - {name: pgd-0.1, tables: [I, II], train: {method: pgd, eps: 0.1, attack_steps: 3, epochs: 12}}
evaluation: {attack_steps: 3}
audit: {attacks: [confidence, adv-confidence, lira, shadow], threshold: both, references: 4, stack_references: 2, bootstrap: 50}
"""


def _tables(out: Path) -> dict:
    return {p.name: p.read_text() for p in sorted((out / "report" / "tables").iterdir())}


def test_two_workers_write_the_tables_of_one(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    one = cli("run", str(spec), "--out", str(tmp_path / "one"), "--quiet", "--workers", "1", "--threads", "1")
    assert one.returncode == 0, one.stderr
    two = cli("run", str(spec), "--out", str(tmp_path / "two"), "--quiet", "--workers", "2", "--threads", "1")
    assert two.returncode == 0, two.stderr
    assert _tables(tmp_path / "two") == _tables(tmp_path / "one")
    log = (tmp_path / "two" / "study.log").read_text()
    # digits-mlp stacks on a CPU: its 4 reference models train as 2 tasks of 2 stacked models, for each target
    assert log.count("reference models 0-1 ready") == 2 and log.count("reference models 2-3 ready") == 2
    assert "audited natural (" in log and "audited 2 targets:" in log


SHARED = """
name: local-shared
description: two targets of one run, audited with different attacks that both read reference models
defaults: {dataset: digits, model: digits-mlp, train_size: 60, batch_size: 32, epochs: 2}
targets:
  - {name: first, tables: [I], train: {method: natural}, audit: {attacks: [confidence, lira]}}
  - {name: second, tables: [I], train: {method: natural}, audit: {attacks: [loss, rmia]}}
audit: {attacks: [confidence], references: 4, stack_references: 1, bootstrap: 20}
"""


def test_two_workers_audit_two_targets_of_one_run(tmp_path):
    """Targets that resolve to one run share its audit folder and its reference models: two workers once raced for
    them (one refused the other's lock); now the run's reference models train once and its audits run in one task."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SHARED)
    done = cli("run", str(spec), "--out", str(tmp_path / "out"), "--quiet", "--workers", "2", "--threads", "1")
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "out" / "study.log").read_text()
    assert all(log.count(f"reference models {j}-{j} ready") == 1 for j in range(4)), log
    assert "audited first, second (2 of 2 targets)" in log
    import json

    results = {r["name"]: {a["attack"] for a in r["attacks"]} for r in json.loads((tmp_path / "out" / "results.json").read_text())}
    assert results == {"first": {"confidence", "lira"}, "second": {"loss", "rmia"}}


def _warns(progress=None) -> int:
    from robustmia.errors import warn

    warn("a warning raised in a worker process")
    return os.getpid()


def _dies(progress=None) -> None:
    os._exit(3)


def _refuses(progress=None) -> None:
    from robustmia.errors import UserError

    raise UserError("a mistake found inside a task")


def test_a_workers_warnings_results_and_errors_come_back():
    from robustmia.errors import RobustmiaWarning, UserError
    from robustmia.experiments.backends import LocalBackend

    backend = LocalBackend(threads=1, workers=2)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pids = backend.run([(_warns, ()), (_warns, ())])
            assert os.getpid() not in pids  # the tasks ran in worker processes
            assert [str(w.message) for w in caught if w.category is RobustmiaWarning] == ["a warning raised in a worker process"] * 2
            with pytest.raises(UserError, match="^a mistake found inside a task$"):
                backend.run([(_refuses, ()), (_refuses, ())])
            with pytest.raises(UserError, match="a worker process of the study died.*--resume"):
                backend.run([(_dies, ()), (_warns, ())])
    finally:
        backend.close()


def test_a_gpu_runs_one_task_at_a_time_and_a_cpu_one_per_core(monkeypatch):
    from robustmia.experiments import backends

    monkeypatch.setattr(backends, "cpu_count", lambda: 8)
    assert backends.make_backend("local", device="cpu").workers == 8
    assert backends.make_backend("local", device="cpu", threads=2).workers == 4
    assert backends.make_backend("local", device="cpu", threads=16).workers == 1
    assert backends.make_backend("local", device="cpu").threads == 1
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert backends.make_backend("local", device="cuda").workers == 1
    assert backends.make_backend("local", device="auto").workers == 1


def test_the_address_of_a_local_backend_is_one_line(run_main, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    code, out, err = run_main("run", str(spec), "--out", str(tmp_path / "o"), "--address", "10.0.0.1:6379")
    assert_one_line_error(code, out, err, "--address is an option of --backend ray")
    assert not (tmp_path / "o").exists()


def test_a_worker_ends_with_the_study_process(tmp_path):
    """A killed study leaves no worker training on: its workers ask the kernel to end them with their parent."""
    import signal
    import subprocess
    import sys
    import time

    marker = tmp_path / "child.pid"
    script = tmp_path / "study.py"  # (spawn imports the child's function from the parent's main file)
    script.write_text(f"""
import multiprocessing, os, time
from robustmia.experiments.backends import die_with_parent
def child():
    die_with_parent()
    open({str(marker)!r}, "w").write(str(os.getpid()))
    time.sleep(600)
if __name__ == "__main__":
    multiprocessing.get_context("spawn").Process(target=child).start()
    time.sleep(600)
""")
    parent = subprocess.Popen([sys.executable, str(script)])
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    child = int(marker.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):  # the kernel ends it at once; reaped by init
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the worker outlived its parent")
