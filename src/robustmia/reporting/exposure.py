"""Per-example exposure: the members each target exposes most (the highest scores of its
exposure attack, LiRA or else RMIA: privacy.results.EXPOSURE_ATTACKS) as a grid of thumbnails
with their scores, and how exposure moves between a natural model and its robust twin for the
same images (examples are matched by their ids, so both audits must share an evaluation set).

A robust target's twin is the natural target of the same dataset and architecture whose
stored eps (its robust twin's) equals the robust target's eps.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Optional

import numpy as np

from robustmia.training.methods import ADVERSARIAL, CERTIFIED


def twins(results: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(natural, robust) pairs of targets trained alike but for the method."""
    pairs = []
    for r in results:
        c = r["config"]
        if c.get("external") or c["method"] not in (*ADVERSARIAL, *CERTIFIED):
            continue
        same = lambda n: (n["config"]["method"] == "natural" and not n["config"].get("external")  # noqa: E731
                          and all(n["config"].get(k) == c.get(k) for k in ("dataset", "model", "eps")))
        natural = next((n for n in results if same(n)), None)
        if natural is not None:
            pairs.append((natural, r))
    return pairs


def member_scores(result: dict[str, Any]) -> Optional[dict[int, float]]:
    """Example id -> the exposure attack's score, over the target's members (None: no ids or no such attack)."""
    audit = result["audit"]
    ranked = audit.exposure_attack()
    if audit.ids is None or ranked is None:
        return None
    return {int(i): float(s) for i, s, m in zip(audit.ids, ranked.scores, audit.member) if m}


def _ranks(scores: dict[int, float]) -> dict[int, int]:
    order = sorted(scores, key=lambda i: -scores[i])
    return {i: k + 1 for k, i in enumerate(order)}


def _png(image: np.ndarray) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    img = image[..., 0] if image.shape[-1] == 1 else image
    plt.imsave(buf, img, format="png", cmap="gray", vmin=0, vmax=255)
    return base64.b64encode(buf.getvalue()).decode()


def movement(natural: dict[str, Any], robust: dict[str, Any]) -> Optional[dict[str, Any]]:
    """How exposure moves between twins on their shared members: Spearman's rank correlation of
    the scores, and how many of each one's most exposed members the other also ranks top."""
    a, b = member_scores(natural), member_scores(robust)
    if not a or not b:
        return None
    shared = sorted(set(a) & set(b))
    if len(shared) < 3:
        return None
    x, y = np.array([a[i] for i in shared]), np.array([b[i] for i in shared])
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    rho = float(np.corrcoef(rx, ry)[0, 1])
    k = min(len(natural["audit"].exposure["index"]) if natural["audit"].exposure is not None else 0, len(shared))
    top_a = set(sorted(shared, key=lambda i: -a[i])[:k])
    top_b = set(sorted(shared, key=lambda i: -b[i])[:k])
    n = len(shared)  # the ranks as the figure shows them: 1 = most exposed
    return {"shared": n, "spearman": rho, "k": k, "both_top": len(top_a & top_b), "rank_x": n - rx, "rank_y": n - ry,
            "attack": natural["audit"].exposure_attack().attack}


def _cell(image: np.ndarray, lines: list[str]) -> str:
    caption = "<br>".join(html.escape(t) for t in lines)
    return (f"<figure class='thumb'><img alt='exposed member' src='data:image/png;base64,{_png(image)}'>"
            f"<figcaption>{caption}</figcaption></figure>")


def exposure_html(results: list[dict[str, Any]]) -> str:
    """The report's exposure section: a thumbnail grid per target, with each image's rank in its twin."""
    twin_of = {}
    for natural, robust in twins(results):
        twin_of.setdefault(natural["name"], robust)
        twin_of.setdefault(robust["name"], natural)
    parts = []
    for r in results:
        exposure = r["audit"].exposure
        if exposure is None:
            continue
        attack = str(exposure["attack"])
        twin = twin_of.get(r["name"])
        other = member_scores(twin) if twin is not None else None
        other_rank = _ranks(other) if other else {}
        cells = []
        for k, (index, score, image) in enumerate(zip(exposure["index"], exposure["scores"], exposure["images"])):
            lines = [f"#{k + 1}: {attack} {score:.2f}"]
            if twin is not None and r["audit"].ids is not None:
                i = int(r["audit"].ids[index])
                lines.append(f"{twin['name']}: {other[i]:.2f}, #{other_rank[i]} of {len(other)}" if other and i in other
                             else f"{twin['name']}: not among its members")
            cells.append(_cell(image, lines))
        head = f"{r['name']}: the {len(cells)} most exposed members by {attack} (rank: 1 = most exposed)"
        parts.append(f"<h3>{html.escape(head)}</h3><div class='grid'>{''.join(cells)}</div>")
    return "".join(parts)


def exposure_figures(results: list[dict[str, Any]], folder: Path, save) -> list[Path]:
    """``exposure_<robust>``: each shared member's exposure score under the natural twin against the robust one."""
    import matplotlib.pyplot as plt

    paths = []
    for natural, robust in twins(results):
        m = movement(natural, robust)
        if m is None:
            continue
        n = m["shared"]  # ranks, not scores: LiRA's scores span many orders of magnitude
        fig, ax = plt.subplots(figsize=(5.2, 4.8))
        ax.scatter(m["rank_x"], m["rank_y"], s=8, alpha=0.5)
        ax.set_xlabel(f"{natural['name']}: rank by {m['attack']} (1 = most exposed)")
        ax.set_ylabel(f"{robust['name']}: rank by {m['attack']}")
        ax.set_xlim(0, n + 1)
        ax.set_ylim(0, n + 1)
        ax.set_title(f"exposure of the same {m['shared']} members\nSpearman {m['spearman']:.2f}", fontsize=9)
        paths += save(fig, folder, f"exposure_{robust['name']}")
    return paths


def exposure_findings(results: list[dict[str, Any]]) -> list[str]:
    out = []
    for natural, robust in twins(results):
        m = movement(natural, robust)
        if m is not None:
            out.append(f"{robust['config']['dataset']}: exposure moves between {natural['name']} and its twin {robust['name']} "
                       f"({m['attack']} scores of the {m['shared']} members both audited): Spearman rank correlation "
                       f"{m['spearman']:.2f}; {m['both_top']} of the {m['k']} most exposed members of one are among the "
                       f"{m['k']} most exposed of the other.")
    return out
