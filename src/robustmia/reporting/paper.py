"""The paper's own figures (Song, Shokri & Mittal 2019, CIFAR-10) beside a run's in Tables I-III.

Only the figures robustmia quotes are here (in %); the others are left blank in the tables, not guessed:

- Table I, natural training of WRN-34-10: 100.00% train and 95.01% test accuracy, inference accuracy 57.37%;
- Tables I and II, PGD training of WRN-34-10 at 8/255: adv-train 96.07%, adv-test 46.59%, inference accuracy
  74.86% on benign inputs;
- Table III, the provable model at 2/255 (Wong et al.'s convex outer polytope): 68.57% train and 66.33% test
  accuracy, inference accuracy 51.11%.

A run's row gets the paper's row below it where both are CIFAR-10 and the method's family (natural, adversarial,
certified; training.methods) and the eps agree; the caption says what differs (architecture, schedule, members,
the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

SOURCE = "Song, Shokri & Mittal (2019)"
PAPER_MEMBERS = 50_000


@dataclass(frozen=True)
class PaperRow:
    tables: tuple[str, ...]
    family: str  # training.methods family: natural, adversarial or certified
    eps: float
    method: str
    architecture: str
    figures: dict[str, float]  # PAPER_COLUMNS name -> %


PAPER = (
    PaperRow(("I", "II"), "natural", 0.0, "natural", "WRN-34-10", {"train acc": 100.00, "test acc": 95.01, "inference acc": 57.37}),
    PaperRow(("I", "II"), "adversarial", 8 / 255, "PGD (Madry et al.)", "WRN-34-10",
             {"adv-train acc": 96.07, "adv-test acc": 46.59, "inference acc": 74.86}),
    PaperRow(("III",), "certified", 2 / 255, "convex outer polytope (Wong et al.)", "Wong et al.'s CIFAR-10 network",
             {"train acc": 68.57, "test acc": 66.33, "inference acc": 51.11}),
)


def _family(method: str) -> Optional[str]:
    from robustmia.training.methods import method_spec

    spec = method_spec(method)
    return None if spec is None or spec.private else spec.family


def paper_row(table: str, result: dict[str, Any]) -> Optional[PaperRow]:
    """The paper's row that a run's target sits beside in ``table``, or None (another dataset, method or eps)."""
    c = result["config"]
    if c.get("dataset") != "cifar10" or c.get("external"):
        return None
    family = _family(c["method"])
    eps = c["eps"] if family != "natural" else 0.0
    return next((p for p in PAPER if table in p.tables and p.family == family and abs(p.eps - eps) < 1e-6), None)


def cells(row: PaperRow, columns: list[str]) -> list[str]:
    """The paper's row in the run's columns: its figures where it gives them, blank elsewhere."""
    named = {"dataset": "cifar10 (the paper)", "architecture": row.architecture, "train method": f"the paper: {row.method}",
             "eps": f"{row.eps:.4g}" if row.eps else "-", "threshold": "oracle",
             "members + non-members": f"{PAPER_MEMBERS:,} members"}
    return [named.get(c, f"{row.figures[c]:.2f}" if c in row.figures else "") for c in columns]


def differences(pairs: list[tuple[dict[str, Any], PaperRow]]) -> str:
    """What differs between the run's targets and the paper's rows beside them, for a table's caption."""
    if not pairs:
        return ""
    runs = "; ".join(f"{r['name']}: {r['config']['model']}, {_length(r['config'])}, {_members(r['config'])}" for r, _ in pairs)
    return (f"rows marked 'the paper' give {SOURCE}'s own figures (only those robustmia quotes; blank: not quoted). What differs: "
            f"the architecture and schedule of each target ({runs}; the paper trained WRN-34-10s for 80,000 iterations and "
            f"{PAPER_MEMBERS:,} members), and the data (CIFAR-10 as given to the run: a copy decoded from JPEG, as the shared "
            "subset was, differs from the original pixels)")


def _length(config: dict[str, Any]) -> str:
    if config.get("iterations"):
        return f"{config['iterations']:,} iterations"
    return f"{config.get('epochs') or 30} epochs"


def _members(config: dict[str, Any]) -> str:
    return f"{config['train_size']:,} members" if config.get("train_size") else "every training image a member"
