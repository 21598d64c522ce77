"""Rules the test suite keeps about itself."""

from __future__ import annotations

import re

from tests.conftest import REPO


# an assertion that bounds a time from above: the assert keyword, then a name of a time (elapsed, took, seconds, ...),
# then a less-than; written from its parts so that no line of this file reads as such an assertion itself
TIME_WORDS = "elapsed|took|seconds|duration|wall|perf_counter|monotonic"
TIMED = re.compile("ass" + r"ert\b[^#\n]*\b(" + TIME_WORDS + r")\w*\W{0,3}\s*<")


def test_no_test_asserts_on_elapsed_time():
    """Performance belongs in benchmarks: an assertion on wall-clock time fails on a busy machine (a new user's first
    `make test` failed after 39 minutes on one). This check keeps new ones out; the property a timing stands for is
    asserted instead (e.g. that torch was not imported)."""
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}" for path in sorted((REPO / "tests").rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if TIMED.search(line) and not line.lstrip().startswith("#")]
    assert not found, found
    shapes = ("elapsed < 2.0", "took <= limit", 'result["seconds"] < 5')  # the check finds each shape it is there for
    assert all(TIMED.search("ass" + "ert " + shape) for shape in shapes)
