"""The paper's figures and log-log ROC curves, each written as PNG and SVG.

- ``fig1_loss_histograms``: members' and non-members' loss, one panel per target (natural
  and robust side by side);
- ``fig2_precision_recall``: precision-recall curves of the confidence attack per target;
- ``fig3_accuracy_over_training`` / ``fig4_inference_over_training``: accuracies and
  membership inference accuracy over training (studies with ``track_every``);
- ``roc_<target>``: ROC curves of every attack on log-log axes;
- ``exposure_<target>``: how each member's exposure moves between a robust target and its
  natural twin (reporting.exposure);
- ``frontier``: the privacy-robustness-accuracy frontier (reporting.frontier), in studies that ask;
- ``dp_audit``: each target's one-run DP audit lower bound beside its accountant's epsilon (reporting.dp_audits);
- ``leaderboard``: leakage against robust accuracy of RobustBench entries (reporting.leaderboard).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "robustmia"  # fixed ids inside SVG files, so that they are reproducible
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from robustmia.privacy.metrics import operating_points  # noqa: E402


def _save(fig, folder: Path, name: str, tight: bool = True) -> list[Path]:
    paths = [folder / f"{name}.png", folder / f"{name}.svg"]
    if tight:
        fig.tight_layout()
    for p in paths:  # no creation date in the files: a report rebuilt from the same results is byte-identical
        fig.savefig(p, dpi=110, metadata={"Date": None} if p.suffix == ".svg" else None)
    plt.close(fig)
    return paths


PANEL_COLUMNS = 3  # per-target panels (Figs. 1 and 3) in rows of at most three, each large enough to read at page width
PANEL_SIZE = (4.4, 3.5)  # inches, per panel
LINE_STYLES = ("-", "--", "-.", ":")


def panels(n: int):
    """A grid of ``n`` panels, at most PANEL_COLUMNS a row (the unused ones hidden): (figure, axes in reading order)."""
    columns = min(n, PANEL_COLUMNS)
    rows = -(-n // columns)
    fig, grid = plt.subplots(rows, columns, figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def line_style(i: int) -> dict[str, Any]:
    """The i-th curve's colour and dash, distinct for up to 40 curves (ten colours, then the next dash)."""
    return {"color": plt.get_cmap("tab10")(i % 10), "ls": LINE_STYLES[(i // 10) % len(LINE_STYLES)]}


def _label(r: dict[str, Any]) -> str:
    c = r["config"]
    return f"{r['name']} ({c['method']}{', eps ' + format(c['eps'], '.3g') if c['method'] != 'natural' else ''})"


def loss_histograms(results: list[dict[str, Any]], folder: Path) -> list[Path]:
    fig, axes = panels(len(results))
    for ax, r in zip(axes, results):
        audit = r["audit"]
        loss, member = np.log10(np.maximum(audit.signals["loss"], 1e-12)), audit.member
        bins = np.linspace(loss.min(), loss.max(), 40)
        ax.hist(loss[member], bins=bins, alpha=0.6, label="members", density=True)
        ax.hist(loss[~member], bins=bins, alpha=0.6, label="non-members", density=True)
        ax.set_title(_label(r), fontsize=10)
        ax.set_xlabel("log10 cross-entropy loss")
        ax.set_ylabel("density")
    axes[0].legend(fontsize=9)
    return _save(fig, folder, "fig1_loss_histograms")


def precision_recall(results: list[dict[str, Any]], folder: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    for r in results:
        audit = r["audit"]
        p = operating_points(audit.signals["confidence"].astype(np.float64), audit.member)
        tp, fp = p.tp[1:], p.fp[1:]
        ax.plot(tp / p.n_pos, tp / (tp + fp), label=_label(r))
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("confidence attack: precision-recall", fontsize=10)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=7)
    return _save(fig, folder, "fig2_precision_recall")


def _tracked(results: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    tracked = [(r, [x for x in r["log"] if x.get("track")]) for r in results]
    return [(r, t) for r, t in tracked if t]


def _drops(ax, r: dict[str, Any]) -> None:
    """The epochs where the learning rate dropped (from the training log), as faint vertical lines."""
    log = [x for x in r["log"] if isinstance(x.get("lr"), (int, float))]
    for before, after in zip(log, log[1:]):
        if after["lr"] < 0.5 * before["lr"]:
            ax.axvline(before["epoch"], color="grey", lw=0.8, ls=":")


def over_training(results: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Figs. 3 and 4: what the tracker measured every few epochs (lines), the tables' figures at the end (x marks: they
    are measured on other examples and with a stronger attack, as the captions say), and the learning-rate drops."""
    from robustmia.reporting.tables import find_record

    tracked = _tracked(results)
    if not tracked:
        return []
    paths = []
    fig, axes = panels(len(tracked))
    for ax, (r, t) in zip(axes, tracked):
        epochs = [x["epoch"] for x in t]
        for i, (key, style) in enumerate((("train_accuracy", "-"), ("test_accuracy", "-"), ("adv_train_accuracy", "--"),
                                          ("adv_test_accuracy", "--"))):
            values = [x["track"].get(key) for x in t]
            if all(v is not None for v in values):
                color = plt.get_cmap("tab10")(i)
                ax.plot(epochs, values, style, color=color, label=key.replace("_accuracy", "").replace("_", "-"))
                final = r.get("evaluation", {}).get(key)
                if final is not None:
                    ax.plot([epochs[-1]], [final], "x", color=color, ms=7)
        _drops(ax, r)
        ax.set_title(_label(r), fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
    axes[0].legend(fontsize=9)
    paths += _save(fig, folder, "fig3_accuracy_over_training")
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    for i, (r, t) in enumerate(tracked):
        style = line_style(i)
        ax.plot([x["epoch"] for x in t], [x["track"]["inference_accuracy"] for x in t], marker="o", ms=3, label=_label(r), **style)
        final = find_record(r["attacks"], "confidence", "oracle")
        if final is not None:
            ax.plot([t[-1]["epoch"]], [final["inference_accuracy"]], "x", ms=7, color=style["color"])
    _drops(ax, tracked[0][0])
    ax.set_xlabel("epoch")
    ax.set_ylabel("inference accuracy (confidence, oracle)")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=7)
    paths += _save(fig, folder, "fig4_inference_over_training")
    return paths


def _every(track: list[dict[str, Any]]) -> str:
    step = track[1]["epoch"] - track[0]["epoch"] if len(track) > 1 else track[0]["epoch"]
    return "every epoch" if step == 1 else f"every {step} epochs"


def captions(results: list[dict[str, Any]]) -> dict[str, str]:
    """What each figure shows and how it was measured, by file name (without suffix): into report.html and figures.json."""
    from robustmia.reporting.tables import find_record

    out = {"fig1_loss_histograms": "Fig. 1: the cross-entropy loss of each target's evaluated members and non-members (the audit's "
                                   "evaluation set), as densities on a log scale.",
           "fig2_precision_recall": "Fig. 2: precision against recall of the confidence attack on each target's evaluation set, "
                                    "over every threshold (the tables give the oracle threshold's point)."}
    tracked = _tracked(results)
    if tracked:
        r, t = tracked[0]
        n = t[-1]["track"].get("n", 300)
        conf = find_record(r["attacks"], "confidence", "oracle")
        sizes = f"{conf['n_members']} + {conf['n_nonmembers']}" if conf else "the audit's evaluation set"
        steps = (r.get("evaluation", {}).get("perturbation") or {}).get("steps")
        attack = f"PGD-{steps}" if steps else "the evaluation's PGD"
        out["fig3_accuracy_over_training"] = (
            f"Fig. 3: lines: accuracy on the first {n} members and the first {n} test images, and under PGD-10 in eval mode at "
            f"the training eps (adv-train, adv-test), measured {_every(t)} while training; x: Tables I-II's figures, measured after training on every member and test image (clean) "
            f"and with {attack} on the evaluation's examples: another attack on other examples, so the last line point and the x "
            "differ by that; dotted verticals: the epochs where the learning rate dropped.")
        out["fig4_inference_over_training"] = (
            f"Fig. 4: lines: the confidence attack's inference accuracy with the oracle threshold on those {n} + {n} examples, "
            f"{_every(t)}; x: Tables I-II's figure, the same attack on the audit's {sizes} examples after training: other "
            "examples, so the last line point and the x differ by sampling (both oracle: optimistic, and above 50% even "
            "where nothing leaks); dotted verticals: learning-rate drops.")
    for r in results:
        out[f"roc_{r['name']}"] = (f"ROC curves of every attack on {r['name']} on log-log axes, each over all thresholds of its "
                                   "scores on the evaluation set (the diagonal: chance).")
    return out


def roc_curves(results: list[dict[str, Any]], folder: Path) -> list[Path]:
    paths = []
    for r in results:
        audit = r["audit"]
        fig, ax = plt.subplots(figsize=(6.4, 5.0))
        floor = 1.0 / max(1, len(audit.member))
        for i, a in enumerate(a for a in audit.attacks if a.threshold_selection == "oracle"):
            fpr, tpr = a.roc()
            ax.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), label=a.attack, lw=1.2, **line_style(i))
        ax.plot([floor, 1], [floor, 1], color="grey", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"ROC, {_label(r)}", fontsize=10)
        ax.legend(fontsize=7, ncol=2 if len(ax.lines) > 12 else 1, loc="lower right")
        paths += _save(fig, folder, f"roc_{r['name']}")
    return paths


def write_figures(results: list[dict[str, Any]], folder: Path, frontier: bool = False) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    from robustmia.reporting.dp_audits import figure as dp_audit_figure
    from robustmia.reporting.exposure import exposure_figures
    from robustmia.reporting.frontier import frontier_figure
    from robustmia.reporting.leaderboard import figure as leaderboard_figure

    return ((frontier_figure(results, folder, _save) if frontier else []) + dp_audit_figure(results, folder, _save)
            + leaderboard_figure(results, folder, _save) + loss_histograms(results, folder)
            + precision_recall(results, folder) + over_training(results, folder) + roc_curves(results, folder)
            + exposure_figures(results, folder, _save))
