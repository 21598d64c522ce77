"""The paper's Tables I-III, a table of the modern attacks and one of the attacks beyond the paper
(label-only, white-box, verified margin, reference-free), as Markdown, CSV, LaTeX and JSON.

Rows come from study results; every number carries how it was obtained: inference
accuracy, precision and recall are the confidence attack's with an oracle threshold (the
paper's) or a shadow threshold, each with its 95% bootstrap interval and sample counts.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Optional

from robustmia.privacy.attacks.registry import NEW_FAMILIES
from robustmia.privacy.metrics import epsilon_estimate
from robustmia.privacy.summary import LOW_FPR_NOTE, low_fpr_mark

PAPER_COLUMNS = ["dataset", "architecture", "train method", "eps", "train acc", "test acc", "adv-train acc", "adv-test acc",
                 "verified train", "verified test", "inference acc", "inference acc (PGD inputs)", "precision", "recall",
                 "KL", "AUPRC", "threshold", "members + non-members"]
EPSILON_COLUMN = "epsilon estimate (one run; no DP bound)"
MODERN_COLUMNS = ["target", "attack", "accuracy (calibrated) [95% CI]", "chance", "accuracy (oracle, optimistic)", "ROC AUC",
                  "TPR@0.1%FPR", "TPR@1%FPR", "advantage", EPSILON_COLUMN, "members + non-members", "references"]
BEYOND_COLUMNS = ["target", "attack", "sees", "threshold", "inference acc", "ROC AUC", "TPR@1%FPR", EPSILON_COLUMN,
                  "queries or settings", "members + non-members", "references"]


def _pct(v: Optional[float]) -> str:
    return "" if v is None else f"{100 * v:.2f}"


def with_ci(record: dict[str, Any], key: str, scale: float = 100.0) -> str:
    if key.startswith("tpr_at_fpr_"):
        value = record["tpr_at_fpr"][key.removeprefix("tpr_at_fpr_")]
    else:
        value = record[key]
    ci = record["ci95"].get(key)
    text = f"{scale * value:.2f}"
    return f"{text} [{scale * ci[0]:.2f}, {scale * ci[1]:.2f}]" if ci else text


def method_text(r: dict[str, Any]) -> str:
    """The training method, with what training itself says: a DP run's (epsilon, delta), an early stop's epoch."""
    text = r["config"]["method"]
    if r.get("dp"):
        text += f" (DP epsilon {r['dp']['epsilon']:.2f}, delta {r['dp']['delta']:g})"
    if r.get("early_stop"):
        text += f" (early-stopped at epoch {r['early_stop']['epoch']})"
    return text


def target_text(r: dict[str, Any]) -> str:
    return r["name"] + (f" (DP epsilon {r['dp']['epsilon']:.2f})" if r.get("dp") else "")


def find_record(records: list[dict], attack: str, selection: str) -> Optional[dict]:
    return next((r for r in records if r["attack"] == attack and r["threshold_selection"] == selection), None)


def paper_rows(results: list[dict[str, Any]], table: str, selection: str = "oracle") -> list[list[str]]:
    rows = []
    for r in results:
        if table not in r["tables"]:
            continue
        c, e = r["config"], r["evaluation"]
        conf = find_record(r["attacks"], "confidence", selection)
        adv = find_record(r["attacks"], "adv-confidence", selection)
        if conf is None:
            continue
        rows.append([
            c["dataset"], c["model"], method_text(r), f"{c['eps']:.4g}" if c["eps"] else "-",
            _pct(e.get("train_accuracy")), _pct(e.get("test_accuracy")), _pct(e.get("adv_train_accuracy")),
            _pct(e.get("adv_test_accuracy")), _pct(e.get("verified_train_accuracy")), _pct(e.get("verified_test_accuracy")),
            with_ci(conf, "inference_accuracy"), with_ci(adv, "inference_accuracy") if adv else "",
            with_ci(conf, "precision"), with_ci(conf, "recall"), f"{conf['kl_divergence']:.4f}", with_ci(conf, "auprc"),
            selection, f"{conf['n_members']} + {conf['n_nonmembers']}",
        ])
    return rows


EPSILON_NOTE = ("the one-run epsilon estimate [95% interval]: a descriptive figure that bounds no DP guarantee (one model's "
                "examples are not independent trials); a valid bound needs a one-run DP audit with canaries (robustmia dp-audit)")

def epsilon_text(record: dict[str, Any]) -> str:
    """The descriptive one-run epsilon figure and its interval, e.g. ``0.41 [0.41, 2.52]`` (inf: no finite upper end)."""
    e = epsilon_estimate(record)
    if not e:
        return ""
    hi = e["interval"][1]
    return f"{e['value']:.2f} [{e['interval'][0]:.2f}, {'inf' if hi is None else format(hi, '.2f')}]"


def calibrated_text(record: dict[str, Any]) -> str:
    """The calibrated accuracy and its interval in %, e.g. ``52.20 [48.10, 56.30]`` (records made before it: empty)."""
    h = record.get("calibrated")
    return f"{100 * h['inference_accuracy']:.2f} [{100 * h['ci95'][0]:.2f}, {100 * h['ci95'][1]:.2f}]" if h else ""


def modern_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """Per target (in the study's order), its black-box attacks, the strongest (by calibrated accuracy) first."""
    from robustmia.privacy.summary import chance_text

    rows = []
    for r in results:
        shown = [a for a in r["attacks"] if a["threshold_selection"] == "oracle" and a.get("family", "black-box") not in NEW_FAMILIES]
        shown.sort(key=lambda a: -(a.get("calibrated") or {}).get("inference_accuracy", a.get("split_accuracy") or 0.0))
        for a in shown:
            rows.append([target_text(r), a["attack"], calibrated_text(a), chance_text(a, r["attacks"]), _pct(a["inference_accuracy"]),
                         with_ci(a, "roc_auc"), with_ci(a, "tpr_at_fpr_0.001") + low_fpr_mark(a, 0.001),
                         with_ci(a, "tpr_at_fpr_0.01") + low_fpr_mark(a, 0.01), with_ci(a, "advantage"),
                         epsilon_text(a), f"{a['n_members']} + {a['n_nonmembers']}", str(a.get("n_references", 0))])
    return rows


def _settings_text(record: dict[str, Any]) -> str:
    parts = []
    for probe, how in record.get("probes", {}).items():
        parts.append(f"{probe}: " + ("queries " + how["queries"] if "queries" in how else
                                     ", ".join(f"{k} {v}" for k, v in how.items())))
    return "; ".join(parts)


def beyond_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """The label-only, white-box, verified-margin and reference-free attacks, per target and threshold selection."""
    rows = []
    for r in results:
        for a in r["attacks"]:
            if a.get("family") not in NEW_FAMILIES:
                continue
            rows.append([target_text(r), a["attack"], a["family"], a["threshold_selection"], with_ci(a, "inference_accuracy"),
                         with_ci(a, "roc_auc"), with_ci(a, "tpr_at_fpr_0.01") + low_fpr_mark(a, 0.01), epsilon_text(a),
                         _settings_text(a), f"{a['n_members']} + {a['n_nonmembers']}", str(a.get("n_references", 0))])
    return rows


def to_markdown(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(columns: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    w.writerows(rows)
    return buf.getvalue()


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
        s = s.replace(a, b)
    return s


def to_latex(columns: list[str], rows: list[list[str]], caption: str) -> str:
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{_tex_escape(caption)}}}",
             r"\begin{tabular}{" + "l" * len(columns) + "}", r"\toprule",
             " & ".join(_tex_escape(c) for c in columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex_escape(v) for v in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


TABLES = {
    "table1": ("I", "Table I: natural vs PGD-trained models (confidence attack, benign and PGD inputs)"),
    "table2": ("II", "Table II: PGD training at several epsilons"),
    "table3": ("III", "Table III: provably trained models"),
}


def build_tables(results: list[dict[str, Any]]) -> dict[str, tuple[list[str], list[list[str]], str]]:
    """The paper's Tables I-III, the modern attacks and the attacks beyond the paper (the report adds the frontier,
    one-run DP audits and the leaderboard where a study has them: reporting.build)."""
    from robustmia.reporting.paper import cells, differences, paper_row

    tables = {}
    for key, (table, caption) in TABLES.items():
        rows, pairs = [], []
        for r in results:  # each target's oracle row (the paper's definition), then the paper's own row where it has one
            own = paper_rows([r], table)
            rows += own
            beside = paper_row(table, r) if own else None
            if beside is not None:
                rows.append(cells(beside, PAPER_COLUMNS))
                pairs.append((r, beside))
        rows += paper_rows(results, table, "shadow")
        if rows:
            caption += "; inference accuracy, precision, recall and AUPRC in % with 95% bootstrap CIs"
            tables[key] = (PAPER_COLUMNS, rows, caption + (f"; {differences(pairs)}" if pairs else ""))
    tables["modern"] = (MODERN_COLUMNS, modern_rows(results),
                        "Modern attacks, by target, the strongest first: the calibrated inference accuracy (its threshold chosen "
                        "on one half of the evaluation set and scored on the other, both ways; the number to quote) with its 95% "
                        "interval; chance, the permutation p-value of the oracle accuracy at a 5% family-wise level over the "
                        "target's attacks; the oracle accuracy (threshold picked on the evaluation set itself: the paper's "
                        "optimistic upper estimate); ROC AUC, TPR at low FPR and advantage (%) with 95% bootstrap CIs; and "
                        f"{EPSILON_NOTE}; {LOW_FPR_NOTE}")
    beyond = beyond_rows(results)
    if beyond:
        tables["beyond"] = (BEYOND_COLUMNS, beyond,
                            "Attacks beyond the paper (label-only, white-box, verified margin, reference-free): inference accuracy "
                            "at the threshold named (quantile: the attack's own per-example threshold), ROC AUC and TPR at 1% FPR "
                            f"(%) with 95% bootstrap CIs, and {EPSILON_NOTE}; {LOW_FPR_NOTE}")
    return tables


Table = tuple[list[str], list[list[str]], str]


def write_tables(tables: dict[str, Table], folder: Path) -> dict[str, Table]:
    """Each table as Markdown, CSV, LaTeX and JSON in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, (columns, rows, caption) in tables.items():
        (folder / f"{key}.md").write_text(f"**{caption}**\n\n" + to_markdown(columns, rows))
        (folder / f"{key}.csv").write_text(to_csv(columns, rows))
        (folder / f"{key}.tex").write_text(to_latex(columns, rows, caption))
        (folder / f"{key}.json").write_text(json.dumps({"caption": caption, "columns": columns, "rows": rows}, indent=2))
    return tables
