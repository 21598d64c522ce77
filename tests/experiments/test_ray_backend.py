"""`robustmia run --backend ray`: a local Ray cluster of 2 CPUs, a worker killed midway, the same tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, cli

pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]' (make test does)")

SPEC = """
name: ray-mini
description: a small study for the Ray backend test
defaults: {dataset: digits, model: digits-mlp, train_size: 150, batch_size: 32, epochs: 12}
targets:
  - {name: natural, tables: [I, II], train: {method: natural, eps: 0.1}}
  - {name: pgd-0.1, tables: [I, II], train: {method: pgd, eps: 0.1, epochs: 30}}
evaluation: {attack_steps: 5}
audit: {attacks: [confidence, lira, shadow], threshold: both, references: 4, stack_references: 2, bootstrap: 50}
"""


def _tables(out: Path) -> dict:
    return {p.name: p.read_text() for p in sorted((out / "report" / "tables").iterdir())}


def _task_processes(title: str) -> list[int]:
    """PIDs of Ray workers running a task of this name (Ray titles them ray::<name>)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(f"ray::{title}".encode()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _wait_for_midway(out: Path, process: subprocess.Popen, deadline: float) -> Path:
    """The staging folder of a target that has saved an epoch but not finished."""
    while time.time() < deadline and process.poll() is None:
        for meta in out.glob("runs/*.partial/checkpoint/meta.json"):
            try:
                epoch = json.loads(meta.read_text())["epoch"]
            except (OSError, ValueError):
                continue
            if 1 <= epoch < 15:
                return meta.parent.parent
        time.sleep(0.02)
    raise AssertionError("no target was seen midway through training")


def test_a_study_on_ray_survives_a_killed_worker_and_matches_the_local_backend(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    local = cli("run", str(spec), "--out", str(tmp_path / "local"), "--quiet", "--threads", "1")
    assert local.returncode == 0, local.stderr

    out = tmp_path / "ray"
    process = subprocess.Popen(
        [sys.executable, "-m", "robustmia", "run", str(spec), "--out", str(out), "--quiet", "--backend", "ray", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        staging = _wait_for_midway(out, process, time.time() + 300)
        victims = _task_processes("train_target")
        assert victims, "no Ray worker is running train_target"
        os.kill(victims[0], signal.SIGKILL)
        stdout, stderr = process.communicate()
    finally:
        process.kill()
    assert process.returncode == 0, stderr[-3000:]
    assert victims[0] not in _task_processes("train_target")  # that worker died; Ray retried its task elsewhere
    assert not staging.exists() and staging.with_name(staging.name.removesuffix(".partial")).is_dir()  # finished, renamed
    assert not list(out.glob("runs/*.partial"))
    assert _tables(out) == _tables(tmp_path / "local")
    assert "ray backend" in (out / "study.log").read_text()


def test_an_unreachable_cluster_is_one_line(run_main, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    code, out, err = run_main("run", str(spec), "--out", str(tmp_path / "o"), "--quiet", "--backend", "ray", "--address", "127.0.0.1:1")
    assert_one_line_error(code, out, err, "cannot reach a Ray cluster", "ray start --head")
    assert not (tmp_path / "o").exists()


def test_a_users_mistake_inside_a_task_comes_back_as_its_one_line():
    from robustmia.errors import UserError
    from robustmia.experiments.backends import RayBackend
    from robustmia.experiments.runner import evaluate_target
    from robustmia.experiments.targets import RunTarget

    backend = RayBackend(workers=1)
    try:
        with pytest.raises(UserError) as e:
            backend.run([(evaluate_target, (None, RunTarget("/nonexistent/run"), "cpu"))])
    finally:
        backend.close()
    assert str(e.value) == "run folder /nonexistent/run does not exist; pass the --out folder of `robustmia train`"


def test_without_ray_installed_the_backend_says_how_to_get_it(run_main, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as where the extra is missing
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    code, out, err = run_main("run", str(spec), "--out", str(tmp_path / "o"), "--quiet", "--backend", "ray")
    assert_one_line_error(code, out, err, "pip install 'robustmia[ray]'")
    assert not (tmp_path / "o").exists()
