"""Shared fixtures. Real CIFAR-10 data comes from ROBUSTMIA_TEST_DATA (CI sets it to
../shared/data); without it, tests that need the data skip with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# `make test` runs the suite in parallel processes (pytest-xdist), one per core: each of them, and every robustmia
# command a test starts, then computes on one thread, on a core of its own. Threads beyond the cores make OpenMP's
# busy-waiting threads fight for them, which made the suite several times slower, not faster; and a study sees one
# core, so its local backend runs its tasks in this process instead of starting worker processes.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw")) % len(cores)]})
    import torch

    torch.set_num_threads(1)


# How `make test` shares the suite out (``--dist loadgroup``): a test that uses a module's fixture goes where the
# module's other such tests go (the fixture is built once), every other test goes alone, and the costliest go out
# first, by the seconds each took in a measured run (DURATIONS; a test not in it counts UNMEASURED seconds). After
# changing the suite, measure it again: `pytest -n 2 --dist loadgroup --no-loadscope-reorder --store-durations`.
DURATIONS = REPO / "tests" / "durations.json"
UNMEASURED = 5.0


def pytest_addoption(parser):
    parser.addoption("--store-durations", action="store_true", help=f"write each test's seconds to {DURATIONS.name}")


def _group(item) -> str:
    marks = sorted(str(m.args[0]) for m in item.iter_markers("xdist_group"))
    return "_".join(marks) or item.nodeid


def pytest_configure(config):
    """Refuse, before any worker starts, a pytest on which xdist's groups would silently vanish: xdist names a test's
    group by rewriting ``item._nodeid``, and pytest 9.2 no longer reads a test's id from there."""
    from _pytest.nodes import Node

    if config.getoption("dist", "no") == "loadgroup" and "_nodeid" not in Node.nodeid.fget.__code__.co_names:
        raise pytest.UsageError(f"pytest {pytest.__version__} does not let pytest-xdist group tests (--dist loadgroup); "
                                "install the dev extra's pytest: pip install -e '.[dev]'")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which puts each group's name into its tests' ids
def pytest_collection_modifyitems(config, items):
    if not getattr(config.option, "loadgroup", False):  # how an xdist worker, which collects, sees --dist loadgroup
        return
    for item in items:
        shared = [d[-1] for d in item._fixtureinfo.name2fixturedefs.values() if d[-1].scope in ("module", "class")]
        if shared and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    measured = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
    group = {item.nodeid: _group(item) for item in items}
    cost: dict[str, float] = {}
    for item in items:
        cost[group[item.nodeid]] = cost.get(group[item.nodeid], 0.0) + measured.get(item.nodeid, UNMEASURED)
    items.sort(key=lambda item: (-cost[group[item.nodeid]], group[item.nodeid]))


_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    nodeid, at, group = report.nodeid.rpartition("@")
    if not at or "::" in group or "]" in group:  # no group appended by xdist: an "@" of the test's own name
        nodeid = report.nodeid
    _SECONDS[nodeid] = _SECONDS.get(nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    if session.config.getoption("store_durations") and not hasattr(session.config, "workerinput"):
        DURATIONS.write_text(json.dumps({k: round(v, 1) for k, v in sorted(_SECONDS.items())}, indent=0) + "\n")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    explicit = os.environ.get("ROBUSTMIA_TEST_DATA")
    path = Path(explicit) if explicit else REPO.parent / "shared" / "data"
    if not (path / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file():
        if explicit:
            pytest.fail(f"ROBUSTMIA_TEST_DATA={explicit} is set but holds no cifar10/cifar-10-batches-py/test_batch")
        pytest.skip("the CIFAR-10 test subset is not here: set ROBUSTMIA_TEST_DATA to a folder like ../shared/data")
    return path


@pytest.fixture(scope="session")
def cifar_dir(shared_data: Path) -> Path:
    return shared_data / "cifar10"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real ``robustmia`` command in a subprocess (no wall-clock limit: the tests limit the work instead,
    so that a busy machine makes them slower, not failed)."""
    return subprocess.run(
        [sys.executable, "-m", "robustmia", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture
def run_main(capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    from robustmia.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    return run


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("robustmia: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def train_recipes(root: Path, *recipes: str) -> Path:
    """Train each named recipe into ``root/<recipe>`` through the real CLI."""
    for recipe in recipes:
        r = cli("train", "--recipe", recipe, "--out", str(root / recipe), "--quiet")
        assert r.returncode == 0, r.stderr
    return root


def evaluate_json(run: Path, *flags: str) -> dict:
    """``robustmia evaluate RUN --json`` through the real CLI, parsed."""
    import json

    r = cli("evaluate", str(run), "--json", *flags)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)

