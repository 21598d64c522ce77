"""Write a study's whole report (tables, figures, findings and report.html) from the study
folder alone: ``results.json`` and each target's saved audit (``audits/<target>/``). No model
or dataset is loaded, so a report can be rebuilt wherever the folder is copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from robustmia.errors import UserError
from robustmia.experiments.layout import REPORT_FOLDER, RESULTS_FILE, SPEC_FILE
from robustmia.io import read_json, write_json
from robustmia.privacy.results import ATTACKS_FILE, AuditResult
from robustmia.reporting.figures import write_figures
from robustmia.reporting.findings import findings
from robustmia.reporting.frontier import frontier_findings, soundness
from robustmia.reporting.html import write_html
from robustmia.reporting.tables import write_tables
from robustmia.reporting.tables import TABLES


def notes(results: list[dict[str, Any]]) -> list[str]:
    n = {f"{a['n_members']} members + {a['n_nonmembers']} non-members" for r in results for a in r["attacks"]}
    boots = {a.get("n_bootstrap", 0) for r in results for a in r["attacks"]}
    refs = {a.get("n_references", 0) for r in results for a in r["attacks"] if a.get("n_references")}
    return [
        "Inference accuracy, precision and recall of the paper's tables: the confidence threshold attack; 'oracle' rows pick "
        "the threshold that maximises accuracy on the evaluation set itself (the paper's choice, an optimistic upper bound), "
        "'shadow' rows pick it on reference models trained with the target's recipe and apply it to the target.",
        f"Evaluation sets: {', '.join(sorted(n))}. Inference accuracy is balanced, (TPR + TNR) / 2: the paper's accuracy on "
        "balanced sets, and meaningful on unbalanced ones; precision is TP / (TP + FP) on the sets as given.",
        f"95% confidence intervals: 2.5 and 97.5 percentiles over {', '.join(map(str, sorted(boots)))} bootstrap resamples "
        "(the oracle threshold re-chosen in each).",
        f"LiRA, RMIA and the shadow-model attack use {', '.join(map(str, sorted(refs))) or 'no'} reference models per target, "
        "each trained on a random half of the evaluation set (every example in exactly half of them).",
        "Adversarial accuracies: PGD in eval mode at the target's eps (steps and step size in each run's settings). Verified "
        "accuracies: certified lower bounds on every margin over the eps-ball clipped to [0, 1].",
        "KL divergence: KL(members || non-members) of the loss, 100 equal-width bins over the pooled range, +0.5 per bin.",
    ]


def _single_audit(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An audit folder (attacks.json + scores.npz: ``robustmia attack``, ``robustmia.audit(...).save``)
    as a study of one target, for its report: modern attacks, figures, provenance and warnings."""
    audit = AuditResult.load(folder, f"run the audit again to rewrite {folder}")
    ext = audit.about.get("external", {})
    stated = ext.get("trained_with") or {}
    name = Path(audit.about["run"]).name if "run" in audit.about else "target"
    config = {"dataset": ext.get("dataset", ""), "model": ext.get("arch", ""), "method": stated.get("method") or "external",
              "eps": stated.get("eps") or 0.0, "external": bool(ext)}
    result = {"name": name, "tables": [], "run": str(audit.about.get("run", folder)), "config": config, "evaluation": {},
              "attacks": audit.records(), "audit": audit, "log": [], **{k: audit.about[k] for k in ("external", "warnings") if k in audit.about}}
    return {"name": f"membership audit of {name}", "description": f"the audit saved in {folder}"}, [result]


def load_study(study: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The study's spec (as written) and its per-target results, each with its ``audit`` loaded; or
    an audit folder's single result."""
    study = Path(study)
    if not (study / RESULTS_FILE).is_file() and (study / ATTACKS_FILE).is_file():
        return _single_audit(study)
    if not (study / RESULTS_FILE).is_file():
        raise UserError(f"{study} holds no finished study ({RESULTS_FILE} is missing); run `robustmia run SPEC --out {study}` first")
    recover = f"run the study again with --resume (--out {study}) to rewrite it"
    try:
        spec = yaml.safe_load((study / SPEC_FILE).read_text(encoding="utf-8")) if (study / SPEC_FILE).is_file() else {}
    except (ValueError, yaml.YAMLError):
        spec = {}  # only the title and description are read from it
    results = read_json(study / RESULTS_FILE, recover)
    if not isinstance(results, list) or not all(isinstance(r, dict) and "audit" in r for r in results):
        raise UserError(f"{study / RESULTS_FILE} is not a list of target results; {recover}")
    for r in results:
        r["audit"] = AuditResult.load(study / r["audit"], recover)
    return spec if isinstance(spec, dict) else {}, results


def write_report(study: Path) -> dict[str, Any]:
    """Rebuild ``STUDY/report/`` from the study folder; return the report's summary."""
    spec, results = load_study(study)
    title, description = str(spec.get("name", "study")), str(spec.get("description", ""))
    folder = Path(study) / REPORT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:  # an attack that proves more than a DP model's accountant allows is a bug, never hidden
        r["warnings"] = [*r.get("warnings", []), *soundness(r)]
    tables = write_tables(results, folder / "tables", frontier=bool(spec.get("frontier")))
    figures = write_figures(results, folder / "figures", frontier=bool(spec.get("frontier")))
    found = findings(results) + (frontier_findings(results) if spec.get("frontier") else [])
    write_html(folder / "report.html", title, description, tables, figures, found, results, notes(results))
    (folder / "findings.md").write_text("\n\n".join(found) + "\n")
    summary = {"tables": sorted(tables), "figures": sorted(p.name for p in figures), "findings": found,
               "paper_tables": {k: v[0] for k, v in TABLES.items() if k in tables}}
    summary["warnings"] = [f"{r['name']}: {w}" for r in results for w in r.get("warnings", [])]
    write_json(folder / "report.json", summary)
    return summary
