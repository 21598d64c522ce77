"""One self-contained page: tables, figures (embedded), findings and every run's settings."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from robustmia.reporting.exposure import exposure_html

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1340px; padding: 0 1em; color: #222; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 3px 5px; text-align: right; }
th { white-space: normal; vertical-align: bottom; }
td { white-space: normal; }
td:first-child, td:nth-child(2), td:nth-child(3) { white-space: nowrap; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }
figure.wide { display: block; }
img { max-width: 560px; border: 1px solid #ddd; }
figure.wide img { max-width: 100%; }
.finding { background: #f6f9ff; border-left: 4px solid #5b8def; padding: 0.5em 1em; margin: 0.5em 0; }
.warning { background: #fff6e6; border-left: 4px solid #e69a00; padding: 0.5em 1em; margin: 0.5em 0; }
.grid { display: flex; flex-wrap: wrap; gap: 4px; }
figure.thumb { margin: 2px; width: 104px; font-size: 0.7em; text-align: center; }
figure.thumb img { width: 64px; height: 64px; image-rendering: pixelated; max-width: none; }
details pre { background: #f8f8f8; padding: 0.5em; font-size: 0.8em; }
summary { font-weight: 600; margin: 0.6em 0 0.2em; cursor: pointer; }
"""


def _table(columns: list[str], rows: list[list[str]], caption: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<div class='scroll'><table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


WIDE_FIGURES = ("fig1_loss_histograms", "fig3_accuracy_over_training")  # a panel per target: drawn at the page's width


def _figure(path: Path, caption: str = "") -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    wide = " class='wide'" if path.stem in WIDE_FIGURES else ""
    text = f"{path.stem}: {caption}" if caption else path.stem
    return (f'<figure{wide}><a href="figures/{html.escape(path.name)}"><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
            f'</a><figcaption>{html.escape(text)}</figcaption></figure>')


def group_findings(findings: list[str], names: list[str]) -> list[tuple[str, list[str]]]:
    """The findings by the target each is about (the first target it names as its subject: "on NAME", "(NAME)",
    "model NAME" or a leading "NAME:"), in the study's order, after those about the study as a whole."""
    import re

    def subject(finding: str) -> str:
        found = []
        for name in names:
            pattern = rf"(?:^|on |\(|model |Soundness, )({re.escape(name)})(?=[\s,:;.)]|$)"
            m = re.search(pattern, finding)
            if m:
                found.append((m.start(1), name))
        return min(found)[1] if found else "the study as a whole"

    groups: dict[str, list[str]] = {"the study as a whole": []}
    groups.update({name: [] for name in names})
    for f in findings:
        groups[subject(f)].append(f)
    return [(k, v) for k, v in groups.items() if v]


def write_html(
    path: Path, title: str, description: str, tables: dict, figures: list[Path], findings: list[str], results: list[dict[str, Any]],
    notes: list[str], captions: dict[str, str] | None = None, claims: list[str] | None = None,
) -> None:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(description)}</p>"]
    if claims:
        parts.append("<h2>The paper's claims</h2>" + "".join(f"<p class='finding'>{html.escape(c)}</p>" for c in claims))
    parts.append("<h2>Findings</h2>")
    for group, found in group_findings([f for f in findings if f not in (claims or [])], [r["name"] for r in results]):
        body = "".join(f"<p class='finding'>{html.escape(f)}</p>" for f in found)
        parts.append(f"<details open><summary>{html.escape(group)} ({len(found)})</summary>{body}</details>")
    warnings = [f"{r['name']}: {w}" for r in results for w in r.get("warnings", [])]
    if warnings:
        parts.append("<h2>Warnings</h2>" + "".join(f"<p class='warning'>{html.escape(w)}</p>" for w in warnings))
    parts.append("<h2>How the numbers were obtained</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Tables</h2>")
    parts += [_table(columns, rows, caption) for columns, rows, caption in tables.values()]
    parts.append("<h2>Figures</h2>")
    parts += [_figure(p, (captions or {}).get(p.stem, "")) for p in figures if p.suffix == ".png"]
    exposed = exposure_html(results)
    if exposed:
        parts.append("<h2>Most exposed members</h2>" + exposed)
    parts.append("<h2>Runs and their settings</h2>")
    for r in results:
        shown = {"config": r["config"], "run": r["run"], **({"external": r["external"]} if "external" in r else {})}
        settings = json.dumps(shown, indent=2, sort_keys=True)
        parts.append(f"<details><summary>{html.escape(r['name'])}</summary><pre>{html.escape(settings)}</pre></details>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
