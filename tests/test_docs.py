"""The documentation: the README and every page under docs/.

- every shell and Python example is marked, on the line before its fence, either
  ``<!-- example: runs -->`` or ``<!-- example: not run here (REASON) -->``; an unmarked one fails;
- the examples marked ``runs`` are run, page by page in a fresh folder each, in the order the page gives
  them: a block whose first line is ``# NAME.py`` or ``# NAME.yaml`` is written as that file (the page's
  later commands use it), any other Python block is run with Python, and every shell command is run with
  bash. They run at a small scale where the page says a full one: the rewrites of ``SMALL`` and
  ``SMALL_PYTHON`` (a study becomes its tiny twin; a training, and an audit's reference models, train 2
  epochs), with datasets other than digits read from generated files in their original layouts
  (``ROBUSTMIA_DATA_DIR``). Runnable examples state no numbers of their own; the measured tables of
  the docs each give the command that made them;
- the site's navigation holds every page, each page exists and has its heading, and every section of the
  old README (its headings, kept in ``tests/fixtures/old_readme_headings.txt`` with the page each moved to)
  is reachable from the navigation;
- the CLI reference is written from the typer app: its option list for ``robustmia attack`` is the one
  ``robustmia attack --help`` prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.generated import data_root

MARK = re.compile(r"^<!-- example: (runs|not run here \((?P<why>.+)\)) -->$")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[a-z]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
CODE = ("sh", "bash", "console", "python")  # the blocks that must be marked
FILE = re.compile(r"^# (?P<name>[\w.-]+\.(py|yaml))(:.*)?\n")
SMALL = [  # (pattern, replacement): a study, a training and its reference models at the scale of a test
    (re.compile(r"^(robustmia (reproduce|run) (?!.*--tiny).*)$"), r"\1 --tiny --quiet"),
    (re.compile(r"^(robustmia train (?!.*--epochs).*)$"), r"\1 --epochs 2"),
    (re.compile(r"^(robustmia train .*--epochs) \d+"), r"\1 2"),
]
SMALL_PYTHON = [  # the same in Python: train() configs, and the recipe of an audit's reference models
    (re.compile(r'"epochs": \d+'), '"epochs": 2'),
    (re.compile(r'(reference_recipe="[\w-]+")'), r'\1, reference_train={"epochs": 2}'),
]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
STUDIES_RUN: set[str] = set()  # a preset's tiny twin that several pages show is run once (tests/experiments/test_twins.py runs each too)


@dataclass
class Example:
    page: Path
    line: int
    lang: str
    body: str
    runs: bool
    why: str


def examples(page: Path) -> list[Example]:
    text = page.read_text()
    found = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = [s.strip() for s in text[:m.start()].splitlines() if s.strip()]
        mark = MARK.match(before[-1]) if before else None
        body = "\n".join(s[len(m["indent"]):] for s in m["body"].splitlines()) + "\n"
        found.append(Example(page, line, m["lang"], body, bool(mark and mark[1] == "runs"), (mark["why"] or "") if mark else ""))
        if m["lang"] in CODE and mark is None:
            found[-1].why = None  # unmarked
    return found


def _where(e: Example) -> str:
    return f"{e.page.relative_to(REPO)}:{e.line}"


def test_every_shell_and_python_example_says_whether_it_runs():
    unmarked = [_where(e) for p in PAGES for e in examples(p) if e.lang in CODE and e.why is None]
    assert not unmarked, f"examples with neither <!-- example: runs --> nor <!-- example: not run here (REASON) -->: {unmarked}"
    not_run = [e for p in PAGES for e in examples(p) if e.lang in CODE and not e.runs]
    assert all(len(e.why) > 10 for e in not_run), [_where(e) for e in not_run if len(e.why) <= 10]
    assert any(e.runs for e in examples(REPO / "README.md"))


def _small(text: str, rewrites) -> str:
    for pattern, small in rewrites:
        text = pattern.sub(small, text)
    return text


def _commands(body: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", body)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(_small(line, SMALL))
    return out


RUNNABLE = [p for p in PAGES if any(e.runs for e in examples(p))]


@pytest.fixture(scope="module")
def generated_data(tmp_path_factory):
    return data_root(tmp_path_factory.mktemp("docs-data"))


def _studies(page: Path) -> set[str]:
    return {c for e in examples(page) if e.runs and e.lang != "python" for c in _commands(e.body) if c.startswith("robustmia reproduce ")}


SHOWN_ON = Counter(study for p in RUNNABLE for study in _studies(p))


def _process(page: Path) -> str:
    """The pages that show one study share a process, which runs it once; every other page has one of its own."""
    shared = sorted((s for s in _studies(page) if SHOWN_ON[s] > 1), key=lambda s: (-SHOWN_ON[s], s))
    return f"docs:{shared[0].split()[2] if shared else page.relative_to(REPO)}"  # docs:quick, or the page


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.xdist_group(_process(p))) for p in RUNNABLE],
                         ids=[str(p.relative_to(REPO)) for p in RUNNABLE])
def test_the_runnable_examples_of_a_page_run(page, tmp_path, generated_data):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "ROBUSTMIA_DATA_DIR": str(generated_data),
           "PYTHONPATH": str(tmp_path), "MPLBACKEND": "Agg"}
    ran = 0
    for e in (e for e in examples(page) if e.runs):
        named = FILE.match(e.body)
        if named:
            (tmp_path / named["name"]).write_text(e.body)
            if named["name"].endswith(".yaml"):
                yaml.safe_load(e.body)
            continue
        if e.lang == "python":
            commands = [[sys.executable, "-c", _small(e.body, SMALL_PYTHON)]]
        else:
            commands = [["bash", "-c", c] for c in _commands(e.body)]
        for command in commands:
            if command[-1].startswith("robustmia reproduce ") and command[-1] in STUDIES_RUN:
                continue
            done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{_where(e)}: {command[-1][:200]}\n{done.stderr[-3000:]}"
            if command[-1].startswith("robustmia reproduce "):
                STUDIES_RUN.add(command[-1])
            ran += 1
    assert ran > 0 or any(e.runs and not FILE.match(e.body) for e in examples(page))


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in _nav_pages(v)]
    return [p for item in nav for p in _nav_pages(item)]


def _mkdocs() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # mkdocs' own tags, unused here
    return yaml.load((REPO / "mkdocs.yml").read_text(), Loader=Loader)


def test_every_page_is_in_the_navigation_exists_and_has_its_heading():
    nav = _nav_pages(_mkdocs()["nav"])
    docs = REPO / "docs"
    written = sorted(str(p.relative_to(docs)) for p in docs.rglob("*.md") if "hooks" not in p.parts)
    assert sorted(nav) == written  # no page outside the navigation, none named there that is missing
    for page in nav:
        first = (docs / page).read_text().splitlines()[0]
        assert first.startswith("# ") and len(first) > 4, page


def test_every_section_of_the_old_readme_is_reachable_from_the_navigation():
    nav = set(_nav_pages(_mkdocs()["nav"]))
    moved = [line.split("\t") for line in (REPO / "tests" / "fixtures" / "old_readme_headings.txt").read_text().splitlines() if line]
    assert len(moved) >= 17
    for heading, page in moved:
        assert page in nav, (heading, page)
        words = re.sub(r"^#+\s*", "", heading).split(":")[0].split(",")[0].lower()
        text = (REPO / "docs" / page).read_text().lower()
        assert all(w in text for w in re.findall(r"[a-z]{5,}", words)), (heading, page)


def test_the_cli_page_lists_what_robustmia_attack_help_says():
    from robustmia import cli_docs

    reference = cli_docs.markdown_reference()
    section = reference.split("## `robustmia attack`", 1)[1].split("\n## ", 1)[0]
    on_page = set(re.findall(r"`(--[a-z][a-z0-9-]*)", section))
    done = subprocess.run([sys.executable, "-m", "robustmia", "attack", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0
    heads = [re.split(r"\s{2,}| <", line.strip())[0] for line in done.stdout.splitlines() if re.match(r"^\s+-", line)]
    in_help = {o for head in heads for o in re.findall(r"--[a-z][a-z0-9-]*", head)} - {"--help"}
    assert on_page == in_help and len(in_help) > 20
    page = (REPO / "docs" / "reference" / "cli.md").read_text()
    assert "--reference-recipe" not in page  # the page itself holds only the marker: nothing is added by hand


def test_the_readme_is_read_in_five_minutes():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) < 160, len(lines)
    text = "\n".join(lines)
    for must in ("make demo", "make test", "robustmia reproduce quick", "robustmia attack --arch", "robustmia.audit(", "mkdocs serve",
                 "download.pytorch.org/whl/cpu", "--allow-code", "docs/explanations/paper-map.md"):
        assert must in text, must


DATE = re.compile(r"\b\d{1,2}(-\d{1,2})? (January|February|March|April|May|June|July|August|September|October|November|December)"
                  r" 20\d\d\b|\b(January|February|March|April|May|June|July|August|September|October|November|December) 20\d\d\b")


def test_no_dated_history_outside_the_changelog():
    """The pages state the current fact; what changed and when lives in docs/changelog.md. A date elsewhere may only stamp
    a measurement (its line says 'measured')."""
    for page in PAGES:
        if page.name == "changelog.md":
            continue
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if DATE.search(line):
                assert "measured" in line.lower(), f"{page.relative_to(REPO)}:{number}: {line.strip()}"


def test_the_robustbench_page_lists_the_attacks_a_zoo_model_gets():
    from robustmia.models.robustbench import DEFAULT_ATTACKS as ZOO_ATTACKS, REFERENCE_ATTACKS as ZOO_REFERENCE_ATTACKS

    text = " ".join((REPO / "docs" / "tutorials" / "robustbench.md").read_text().split())
    sentence = text.split("a RobustBench model is audited with the attacks that need no retraining of its recipe:", 1)[1]
    listed, extra = sentence.split(";", 1)
    assert re.findall(r"`([a-z-]+)`", listed.split("(")[0]) == list(ZOO_ATTACKS)
    assert re.findall(r"`([a-z-]+)`", extra.split(".")[0])[1:] == list(ZOO_REFERENCE_ATTACKS)  # (after `--reference-recipe`)
