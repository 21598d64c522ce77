"""Write a study's whole report (tables, figures, findings and report.html) from the study
folder alone: ``results.json`` and each target's saved audit (``audits/<target>/``). No model
or dataset is loaded, so a report can be rebuilt wherever the folder is copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from robustmia.errors import UserError
from robustmia.experiments.layout import PHASES_FILE, REPORT_FOLDER, RESULTS_FILE, SPEC_FILE
from robustmia.io import check_out, read_json, write_json
from robustmia.privacy.results import ATTACKS_FILE, AuditResult, check_records
from robustmia.validation import describe_errors
from robustmia.reporting.figures import captions as figure_captions, write_figures
from robustmia.reporting.claims import claim_lines, claims
from robustmia.reporting.findings import findings
from robustmia.reporting import dp_audits, leaderboard
from robustmia.reporting.frontier import frontier_findings, frontier_table, soundness
from robustmia.reporting.html import write_html
from robustmia.reporting.tables import build_tables, write_tables
from robustmia.reporting.tables import TABLES


def time_note(phases: dict[str, Any]) -> list[str]:
    """Where the study's time went (its phases.json: experiments.runner.Phases), as one note, or none."""
    spent = phases.get("phases") if isinstance(phases, dict) else None
    if not isinstance(spent, list) or not spent or not all(
            isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("seconds"), (int, float)) for p in spent):
        return []
    where = f" on {phases['device']}" if isinstance(phases.get("device"), str) and phases["device"] else ""
    parts = ", ".join(f"{p['name']} {p['seconds']:,.0f} s" for p in spent)
    return [f"Time{where}, by phase of the study's last run (phases.json): {parts}; {sum(p['seconds'] for p in spent):,.0f} s in all."]


def notes(results: list[dict[str, Any]]) -> list[str]:
    """How the numbers on the page were obtained: only what the page shows."""
    records = [a for r in results for a in r["attacks"]]
    n = {f"{a['n_members']} members + {a['n_nonmembers']} non-members" for a in records}
    boots = {a.get("n_bootstrap", 0) for a in records}
    refs = {a.get("n_references", 0) for a in records if a.get("n_references")}
    shadow = any(a["threshold_selection"] == "shadow" for a in records)
    out = []
    if any(r["tables"] for r in results):
        out.append("Inference accuracy, precision and recall of the paper's tables: the confidence threshold attack; 'oracle' rows "
                   "pick the threshold that maximises accuracy on the evaluation set itself (the paper's choice, an optimistic upper "
                   "bound)" + (", 'shadow' rows pick it on reference models trained with the target's recipe and apply it to the "
                               "target." if shadow else "."))
    elif shadow:
        out.append("'shadow' rows pick the threshold on reference models trained with the target's recipe and apply it to the target; "
                   "'oracle' rows pick it on the evaluation set itself (an optimistic upper bound).")
    out.append(f"Evaluation sets: {', '.join(sorted(n))}. Inference accuracy is balanced, (TPR + TNR) / 2: the paper's accuracy on "
               "balanced sets, and meaningful on unbalanced ones; precision is TP / (TP + FP) on the sets as given.")
    if any(a.get("calibrated") for a in records):
        out.append("Calibrated accuracy (the number to quote, first in the claims, findings and modern table): each attack's threshold "
                   "chosen on one half of the evaluation set and scored on the other, both ways; its 95% interval is a normal one "
                   "with a standard error that holds whatever the two halves' correlation, so that at chance it covers 50% "
                   "in at least 95% of studies.")
    if any(a.get("chance") for a in records):
        out.append("Beyond chance: the permutation p-value of the accuracy (the membership labels shuffled, an oracle threshold "
                   "re-chosen each time), against a 5% level split across the target's attacks (Bonferroni); an attack not "
                   "beyond chance is reported as chance, whatever its accuracy.")
    if boots - {0}:
        out.append(f"95% confidence intervals: 2.5 and 97.5 percentiles over {', '.join(map(str, sorted(boots - {0})))} bootstrap "
                   "resamples (the oracle threshold re-chosen in each).")
    if refs:
        out.append(f"LiRA, RMIA and the shadow-model attack use {', '.join(map(str, sorted(refs)))} reference models per target, "
                   "each trained on a random half of the evaluation set (every example in exactly half of them).")
    evaluations = [r["evaluation"] for r in results]
    if any("adv_test_accuracy" in e for e in evaluations):
        out.append("Adversarial accuracies: PGD in eval mode at the target's eps (steps and step size in each run's settings).")
    if any("verified_test_accuracy" in e for e in evaluations):
        out.append("Verified accuracies: certified lower bounds on every margin over the eps-ball clipped to [0, 1].")
    out.append("KL divergence: KL(members || non-members) of the loss, 100 equal-width bins over the pooled range, +0.5 per bin.")
    out.append("The one-run epsilon estimate of each attack is a descriptive figure, not a bound on any DP guarantee: the examples "
               "of one trained model are not independent trials of its training, and its non-members were never candidates for "
               "inclusion. Only a one-run DP audit, in which canaries join the training set by fair coins, gives a valid lower bound.")
    if any(r.get("dp_audit") for r in results):
        out.append("One-run DP audits (Steinke, Nasr & Jagielski 2023): each target's canaries joined its training set by fair coins; "
                   "every attack scored them, guessed 'member' for its k+ highest scores and 'non-member' for its k- lowest, and the "
                   "number of correct guesses gives an epsilon lower bound at the stated confidence, valid for one run (the (k+, k-) "
                   "were fixed in advance, or searched over a grid with the confidence split across it). Beside it, the f-DP bound: the "
                   "largest Gaussian-DP mu the guesses reject (Mahloujifar, Melis & Chaudhuri 2025), and its epsilon at the stated delta; the "
                   "headline takes the largest over the attacks with the confidence split across them.")
    return out


def _single_audit(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An audit folder (attacks.json + scores.npz: ``robustmia attack``, ``robustmia.audit(...).save``)
    as a study of one target, for its report: modern attacks, figures, provenance and warnings."""
    audit = AuditResult.load(folder, f"run the audit again to rewrite {folder}")
    ext = audit.about.get("external", {})
    stated = ext.get("trained_with") or {}
    name = Path(audit.about["run"]).name if "run" in audit.about else "target"
    config = {"dataset": ext.get("dataset", ""), "model": ext.get("arch", ""), "method": stated.get("method") or "external",
              "eps": stated.get("eps") or 0.0, "external": bool(ext)}
    trained = _run_config(audit.about.get("run"))
    if trained is not None:  # a run robustmia trained: its own config says what it is
        config = {"dataset": trained.get("dataset", ""), "model": trained.get("model", ""), "method": trained.get("method", ""),
                  "eps": float(trained.get("eps") or 0.0), "external": False}
    result = {"name": name, "tables": [], "run": str(audit.about.get("run", folder)), "config": config, "evaluation": {},
              "attacks": audit.records(), "audit": audit, "log": [], **{k: audit.about[k] for k in ("external", "warnings") if k in audit.about}}
    return {"name": f"membership audit of {name}", "description": f"the audit saved in {folder}"}, [result]


def _run_config(run: Any) -> Optional[dict[str, Any]]:
    """The config.json of the run an audit was made of (read as data), or None where it is not there or not readable."""
    if not isinstance(run, str):
        return None
    try:
        found = read_json(Path(run) / "config.json", "")
    except UserError:
        return None
    return found if isinstance(found, dict) and isinstance(found.get("eps", 0.0), (int, float)) else None


class TargetConfig(BaseModel):
    """The columns of a target's config that the report reads."""

    model_config = ConfigDict(extra="allow", strict=True)

    dataset: str
    model: str
    method: str
    eps: float


class TargetResult(BaseModel):
    """One entry of a study's results.json, as the report reads it (types checked; more keys allowed)."""

    model_config = ConfigDict(extra="allow", strict=True)

    name: str
    tables: list[str]
    config: TargetConfig
    evaluation: dict[str, Any]
    attacks: list[dict[str, Any]]
    audit: str
    log: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def _check_results(results: Any, path: Path, recover: str) -> list[dict[str, Any]]:
    if not isinstance(results, list) or not results:
        raise UserError(f"{path} is not a list of target results; {recover}")
    for i, r in enumerate(results):
        try:
            TargetResult.model_validate(r)
        except ValidationError as e:
            raise UserError(f"{path}: target {i}: {describe_errors(e)}; {recover}") from None
        check_records(r["attacks"], f"{path}: target {r['name']}", recover)
    return results


def load_study(study: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The study's spec (as written) and its per-target results, each with its ``audit`` loaded; or
    an audit folder's single result."""
    study = Path(study)
    if not (study / RESULTS_FILE).is_file() and (study / ATTACKS_FILE).is_file():
        return _single_audit(study)
    audits = sorted(p.parent for p in study.glob(f"audit/*/{ATTACKS_FILE}"))  # the --out of `robustmia attack`, or a run folder
    if not (study / RESULTS_FILE).is_file() and audits:
        spec, results = {}, []
        for folder in audits:
            spec, found = _single_audit(folder)
            results += [{**r, "name": r["name"] if len(audits) == 1 else f"{r['name']} ({folder.name})"} for r in found]
        return spec, results
    if not (study / RESULTS_FILE).is_file():
        inside = sorted(p.parent for p in study.glob(f"*/{ATTACKS_FILE}"))  # the audit/ folder itself: its audits are one down
        if inside:
            raise UserError(f"{study} holds audits, one folder down: report one of them (robustmia report {inside[0]}) or the "
                            f"folder above ({study.parent}) for all of them")
        raise UserError(f"{study} holds no finished study ({RESULTS_FILE} is missing) and no audit (audit/*/{ATTACKS_FILE}); "
                        f"run `robustmia run SPEC --out {study}` or `robustmia attack ... --out {study}` first")
    recover = f"run the study again with --resume (--out {study}) to rewrite it"
    try:
        spec = yaml.safe_load((study / SPEC_FILE).read_text(encoding="utf-8")) if (study / SPEC_FILE).is_file() else {}
    except (ValueError, yaml.YAMLError):
        spec = {}  # only the title and description are read from it
    results = _check_results(read_json(study / RESULTS_FILE, recover), study / RESULTS_FILE, recover)
    for r in results:
        r["audit"] = AuditResult.load(study / r["audit"], recover)
        # a study written before the calibrated headline existed: its records get it from the audit's saved scores
        made = {(a.attack, a.threshold_selection): a.metrics.calibrated for a in r["audit"].attacks}
        for record in r["attacks"]:
            if not record.get("calibrated") and made.get((record["attack"], record["threshold_selection"])):
                record["calibrated"] = made[(record["attack"], record["threshold_selection"])]
    return spec if isinstance(spec, dict) else {}, results


def _read_phases(study: Path) -> dict[str, Any]:
    """The study's phases.json (the device and each phase's seconds), or {} where there is none or it is damaged. The
    report's own phase is left out: a report cannot say how long it took, and one rebuilt from the folder is the same."""
    try:
        found = read_json(study / PHASES_FILE, "")
    except UserError:
        return {}
    if not isinstance(found, dict) or not isinstance(found.get("phases"), list):
        return {}
    return {**found, "phases": [p for p in found["phases"] if not (isinstance(p, dict) and p.get("name") == "report")]}


def write_report(study: Path) -> dict[str, Any]:
    """Rebuild ``STUDY/report/`` from the study folder; return the report's summary."""
    spec, results = load_study(study)
    title, description = str(spec.get("name", "study")), str(spec.get("description", ""))
    folder = check_out(Path(study) / REPORT_FOLDER, "the report folder")
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:  # an attack that proves more than a DP model's accountant allows is a bug, never hidden
        r["warnings"] = [*r.get("warnings", []), *soundness(r)]
    tables = build_tables(results)
    if spec.get("frontier"):
        tables["frontier"] = frontier_table(results)
    if dp_audits.audited(results):
        tables["dp_audit"] = dp_audits.table(results)
    if leaderboard.entries(results):
        tables["leaderboard"] = leaderboard.table(results)
    write_tables(tables, folder / "tables")
    figures = write_figures(results, folder / "figures", frontier=bool(spec.get("frontier")))
    found = claim_lines(results) + findings(results) + dp_audits.findings(results) + leaderboard.findings(results) + (frontier_findings(results) if spec.get("frontier") else [])
    phases = _read_phases(Path(study))
    shown = {k: v for k, v in figure_captions(results).items() if any(p.stem == k for p in figures)}
    write_json(folder / "figures" / "figures.json", shown)
    write_html(folder / "report.html", title, description, tables, figures, found, results, notes(results) + time_note(phases), shown,
               claim_lines(results))
    (folder / "findings.md").write_text("\n\n".join(found) + "\n")
    summary = {"tables": sorted(tables), "figures": sorted(p.name for p in figures), "findings": found, "claims": claims(results),
               "paper_tables": {k: v[0] for k, v in TABLES.items() if k in tables}}
    summary["warnings"] = [f"{r['name']}: {w}" for r in results for w in r.get("warnings", [])]
    if phases:
        summary["phases"] = phases
    write_json(folder / "report.json", summary)
    return summary
