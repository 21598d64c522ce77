"""One summary of an audit, shown three ways: the CLI's table (console.metrics_table), ``AuditResult.summary()`` (plain
text) and ``AuditResult.to_frame()`` (a pandas DataFrame). Each reads :func:`summary_table`, so the three show the same
columns in the same order.

The first number is the honest one: the **calibrated** accuracy, its threshold chosen on other data than it is scored on
(metrics.calibrated), with its 95% interval. Beside it, the **chance** verdict: the permutation p-value of the attack's
oracle accuracy, at a 5% family-wise level over the audit's attacks (Bonferroni), so that "beyond chance" is said of
no more than 5% of audits that leak nothing. Then the **oracle** accuracy, the paper's definition: its threshold picked
on the very examples it scores, an optimistic upper estimate, shown without its bootstrap interval (which need not
cover 50% when nothing leaks; the records keep it). Then the curve metrics, which pick no threshold.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

FAMILY_LEVEL = 0.05  # the family-wise level of "beyond chance" over an audit's (a target's) attacks
MIN_FALSE_POSITIVES = 10  # below this many allowed false positives, a TPR at an FPR level is marked
LOW_FPR_NOTE = (f"* marks a TPR at an FPR level that allows fewer than {MIN_FALSE_POSITIVES} false positives among the "
                "non-members (e.g. TPR at 0.1% FPR with 300 non-members is TPR at zero false positives)")

COLUMNS = ("attack", "threshold", "accuracy (calibrated) [95% CI]", "chance", "accuracy (oracle, optimistic)",
           "ROC AUC", "TPR@0.1%FPR", "TPR@1%FPR", "advantage")


def low_fpr_mark(record: dict[str, Any], level: float) -> str:
    """``*`` when ``level`` x the non-members allows fewer than MIN_FALSE_POSITIVES false positives."""
    return "*" if level * record["n_nonmembers"] < MIN_FALSE_POSITIVES else ""


def family_level(records: Sequence[dict[str, Any]]) -> Optional[float]:
    """The per-attack level of "beyond chance" at FAMILY_LEVEL over the records that carry a chance test (None: none)."""
    tested = [r for r in records if r.get("chance")]
    return FAMILY_LEVEL / len(tested) if tested else None


def beyond_chance(record: dict[str, Any], records: Sequence[dict[str, Any]]) -> Optional[bool]:
    """Whether ``record``'s accuracy is beyond chance at the family-wise level over ``records`` (None: not tested)."""
    level = family_level(records)
    if level is None or not record.get("chance"):
        return None
    return record["chance"]["p_value"] < level


def chance_text(record: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    verdict = beyond_chance(record, records)
    if verdict is None:
        return "not tested"
    return f"{'beyond chance' if verdict else 'chance'} (p = {record['chance']['p_value']:.3g})"


def headline(record: dict[str, Any]) -> Optional[dict[str, Any]]:
    """A record's calibrated accuracy and interval (records made before it existed have none)."""
    return record.get("calibrated") or None


def _interval(value: float, ci: Optional[Sequence[float]]) -> str:
    return f"{value:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def summary_table(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]], list[str]]:
    """(columns, rows, notes) of an audit's records: what the CLI, ``summary()`` and ``to_frame()`` show."""
    rows = []
    for r in records:
        h = headline(r)
        rows.append([
            r["attack"], r["threshold_selection"], _interval(h["inference_accuracy"], h["ci95"]) if h else "",
            chance_text(r, records), f"{r['inference_accuracy']:.4f}",
            f"{r['roc_auc']:.4f}", f"{r['tpr_at_fpr']['0.001']:.4f}{low_fpr_mark(r, 0.001)}",
            f"{r['tpr_at_fpr']['0.01']:.4f}{low_fpr_mark(r, 0.01)}", f"{r['advantage']:.4f}",
        ])
    return list(COLUMNS), rows, notes(records)


def notes(records: Sequence[dict[str, Any]]) -> list[str]:
    if not records:
        return []
    r = records[0]
    level = family_level(records)
    out = [f"{r['n_members']} members + {r['n_nonmembers']} non-members; accuracy is balanced, (TPR + TNR) / 2.",
           "calibrated: the threshold chosen on other data than it is scored on (one half of the examples, scored on the "
           "other and back; or shadow models), with its 95% interval: the number to quote.",
           ("chance: the permutation p-value of the oracle accuracy, beyond chance below "
            f"{level:.2g} (5% over these {round(FAMILY_LEVEL / level)} attacks)." if level else
            "chance: not tested (no permutations)."),
           "oracle: the paper's accuracy, its threshold picked on the evaluation set itself: an optimistic upper estimate "
           "(its bootstrap interval, in the JSON records, need not cover 50% when nothing leaks).",
           LOW_FPR_NOTE]
    return out


def text_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table (columns padded to their widest cell)."""
    widths = [max(len(str(c)), *(len(str(row[i])) for row in rows)) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line("-" * w for w in widths), *(line(row) for row in rows)])
