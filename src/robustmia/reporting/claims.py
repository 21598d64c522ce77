"""The paper's three claims, one line each, with this run's verdict and its evidence:

1. PGD training leaks more membership than natural training on benign inputs;
2. leakage grows with the training epsilon;
3. a provably trained model leaks little but loses accuracy.

Each compares the confidence attack's calibrated inference accuracy (its threshold chosen on other data than it is
scored on: privacy.summary) with its 95% interval; the paper's own statistic, the oracle accuracy, is in Tables I-III. "shown" needs the paper's direction with separated intervals; overlapping intervals are
"not shown (within noise)"; the reverse direction with separated intervals is "the opposite". A claim whose targets
the study lacks is "not tested". A provable model "leaks little" when its inference accuracy is within 3 points of
50% and below its natural twin's.
"""

from __future__ import annotations

from typing import Any, Optional

from robustmia.reporting.findings import _accuracy, _conf, _fmt, _separated
from robustmia.training.methods import ADVERSARIAL, CERTIFIED

LITTLE = 0.03  # a provable model leaks little within this of 50%
CLAIMS = ("PGD training leaks more than natural training on benign inputs", "leakage grows with the training eps",
          "the provable model leaks little but loses accuracy")


def _verdict(low: dict[str, Any], high: dict[str, Any]) -> str:
    """Whether ``high`` leaks more than ``low`` (the paper's direction), by their intervals."""
    a, b = _accuracy(low), _accuracy(high)
    if _separated(low, high):
        return "shown" if b > a else "the opposite"
    return "not shown (within noise)"


def _plain_pgd(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pgd = [r for r in rs if r["config"]["method"] in ADVERSARIAL and not r["config"].get("early_stop") and _conf(r)]
    return sorted(pgd, key=lambda r: r["config"]["eps"])


def claims(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One verdict per claim and dataset: ``{"claim", "dataset", "verdict", "evidence"}``."""
    out = []
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in results):
        rs = [r for r in results if r["config"]["dataset"] == dataset and not r["config"].get("external") and _conf(r)]
        if not rs:
            continue
        naturals = [r for r in rs if r["config"]["method"] == "natural"]
        natural = next((r for r in naturals if "I" in r["tables"]), naturals[0] if naturals else None)
        pgd = [r for r in _plain_pgd(rs) if r["config"]["method"] == "pgd"]
        out.append({"claim": CLAIMS[0], "dataset": dataset, **_first(natural, pgd)})
        out.append({"claim": CLAIMS[1], "dataset": dataset, **_second(pgd)})
        out.append({"claim": CLAIMS[2], "dataset": dataset, **_third(rs, natural)})
    return out


def _first(natural: Optional[dict[str, Any]], pgd: list[dict[str, Any]]) -> dict[str, str]:
    if natural is None or not pgd:
        return {"verdict": "not tested", "evidence": "the study has no " + ("natural" if natural is None else "PGD") + " target"}
    strongest = next((r for r in reversed(pgd) if "I" in r["tables"]), pgd[-1])
    a, b = _conf(natural), _conf(strongest)
    return {"verdict": _verdict(a, b), "evidence": f"{strongest['name']} {_fmt(b, strongest['attacks'])} against {natural['name']} "
                                                   f"{_fmt(a, natural['attacks'])}"}


def _second(pgd: list[dict[str, Any]]) -> dict[str, str]:
    if len({r["config"]["eps"] for r in pgd}) < 2:
        return {"verdict": "not tested", "evidence": "the study has PGD targets at fewer than two eps"}
    accs = [_accuracy(_conf(r)) for r in pgd]
    grew = all(x < y for x, y in zip(accs, accs[1:]))
    ends = _verdict(_conf(pgd[0]), _conf(pgd[-1]))
    verdict = ends if grew or ends == "the opposite" else "not shown (not monotone in eps)"
    return {"verdict": verdict, "evidence": (" < " if grew else ", ").join(f"{r['name']} {_fmt(_conf(r), r['attacks'])}" for r in pgd)}


def _third(rs: list[dict[str, Any]], natural: Optional[dict[str, Any]]) -> dict[str, str]:
    provable = [r for r in rs if r["config"]["method"] in CERTIFIED]
    if not provable:
        return {"verdict": "not tested", "evidence": "the study has no provably trained target"}
    r = provable[0]
    twin = next((n for n in rs if n["config"]["method"] == "natural" and n["config"]["model"] == r["config"]["model"]), natural)
    c = _conf(r)
    little = abs(_accuracy(c) - 0.5) <= LITTLE
    if twin is None:
        return {"verdict": "not tested", "evidence": f"{r['name']} {_fmt(c, r['attacks'])} has no natural twin to compare with"}
    t = _conf(twin)
    below = _accuracy(c) < _accuracy(t)
    acc, twin_acc = r["evaluation"].get("test_accuracy"), twin["evaluation"].get("test_accuracy")
    loses = acc is not None and twin_acc is not None and acc < twin_acc
    verdict = "shown" if little and below and loses else "not shown (" + ", ".join(
        why for ok, why in ((little, "leaks more than 3 points above 50%"), (below, "leaks no less than its natural twin"),
                            (loses, "loses no test accuracy")) if not ok) + ")"
    accuracy = "" if acc is None or twin_acc is None else f"; test accuracy {100 * acc:.1f}% against {100 * twin_acc:.1f}%"
    return {"verdict": verdict, "evidence": f"{r['name']} {_fmt(c, r['attacks'])} against its natural twin {twin['name']} "
                                            f"{_fmt(t, twin['attacks'])}{accuracy}"}


def claim_lines(results: list[dict[str, Any]]) -> list[str]:
    """The claims as lines for the top of the findings: for each dataset on which the study tests at least one of them
    (a single audit tests none, and gets none)."""
    found = claims(results)
    tested = {c["dataset"] for c in found if c["verdict"] != "not tested"}
    return [f"The paper's claim, {c['claim']} ({c['dataset']}): {c['verdict']}: {c['evidence']}"
            + (" (the confidence attack's calibrated accuracy and its 95% interval; the paper's oracle figures are in Tables I-III)."
               if c["verdict"] != "not tested" else ".") for c in found if c["dataset"] in tested]
