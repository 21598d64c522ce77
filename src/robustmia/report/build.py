"""Write a study's whole report: tables, figures, findings and report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustmia.io import write_json
from robustmia.report.figures import write_figures
from robustmia.report.findings import findings
from robustmia.report.html import write_html
from robustmia.report.tables import write_tables
from robustmia.report.tables import TABLES


def notes(results: list[dict[str, Any]]) -> list[str]:
    n = {f"{a['n_members']} members + {a['n_nonmembers']} non-members" for r in results for a in r["attacks"]}
    boots = {a.get("n_bootstrap", 0) for r in results for a in r["attacks"]}
    refs = {a.get("n_references", 0) for r in results for a in r["attacks"] if a.get("n_references")}
    return [
        "Inference accuracy, precision and recall of the paper's tables: the confidence threshold attack; 'oracle' rows pick "
        "the threshold that maximises accuracy on the evaluation set itself (the paper's choice, an optimistic upper bound), "
        "'shadow' rows pick it on reference models trained with the target's recipe and apply it to the target.",
        f"Evaluation sets are balanced: {', '.join(sorted(n))}.",
        f"95% confidence intervals: 2.5 and 97.5 percentiles over {', '.join(map(str, sorted(boots)))} bootstrap resamples "
        "(the oracle threshold re-chosen in each).",
        f"LiRA, RMIA and the shadow-model attack use {', '.join(map(str, sorted(refs))) or 'no'} reference models per target, "
        "each trained on a random half of the evaluation set (every example in exactly half of them).",
        "Adversarial accuracies: PGD in eval mode at the target's eps (steps and step size in each run's settings). Verified "
        "accuracies: certified lower bounds on every margin over the eps-ball clipped to [0, 1].",
        "KL divergence: KL(members || non-members) of the loss, 100 equal-width bins over the pooled range, +0.5 per bin.",
    ]


def write_report(title: str, description: str, results: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    tables = write_tables(results, folder / "tables")
    figures = write_figures(results, folder / "figures")
    found = findings(results)
    write_html(folder / "report.html", title, description, tables, figures, found, results, notes(results))
    (folder / "findings.md").write_text("\n\n".join(found) + "\n")
    summary = {"tables": sorted(tables), "figures": sorted(p.name for p in figures), "findings": found,
               "paper_tables": {k: v[0] for k, v in TABLES.items() if k in tables}}
    write_json(folder / "report.json", summary)
    return summary
