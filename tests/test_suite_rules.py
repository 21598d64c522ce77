"""Rules the test suite keeps about itself."""

from __future__ import annotations

import re

from tests.conftest import REPO


# an upper bound on a time: ``assert elapsed < 2.0``, ``assert took <= limit``, ``assert result["seconds"] < 5``
TIMED = re.compile(r"assert\b[^#\n]*\b(elapsed|took|seconds|duration|wall|perf_counter|monotonic)\w*\W{0,3}\s*<")


def test_no_test_asserts_on_elapsed_time():
    """Performance belongs in benchmarks: an assertion on wall-clock time fails on a busy machine (a new user's first
    `make test` failed after 39 minutes on one). This check keeps new ones out; the property a timing stands for is
    asserted instead (e.g. that torch was not imported)."""
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}" for path in sorted((REPO / "tests").rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if TIMED.search(line) and not line.lstrip().startswith("#") and "TIMED" not in line]
    assert not found, found
