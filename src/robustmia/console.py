"""What the CLI shows a person: tables, JSON, and a progress bar fed by progress events.

The only module besides cli.py that writes to the terminal."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(obj: Any) -> None:
    """Strict JSON: a NaN or infinite number is printed as null."""
    from robustmia.io import dumps

    sys.stdout.write(dumps(obj) + "\n")


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=title)
    for c in columns:
        shown.add_column(c)
    for r in rows:
        shown.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r])
    Console(width=None if sys.stdout.isatty() else 200).print(shown)


class ProgressBar:
    """Turns progress events into a rich progress bar on stderr, and epoch records into lines."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, transient=True,
        )
        self.task = None
        self.tasks: list = []
        self.started = False

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "start":
            if not self.started:
                self.bar.start()
                self.started = True
            if self.task is not None:
                self.tasks.append(self.task)
            self.task = self.bar.add_task(event["task"], total=event["total"], completed=event.get("completed", 0))
        elif kind == "advance" and self.task is not None:
            self.bar.advance(self.task, event["steps"])
        elif kind == "record":
            self.console.print(
                f"epoch {event['epoch']}  step {event['step']}  lr {event['lr']:g}  "
                f"train loss {event['train_loss']:.4f} acc {event['train_accuracy']:.4f}  " +
                (f"test loss {event['test_loss']:.4f} acc {event['test_accuracy']:.4f}  " if "test_loss" in event else "") +
                f"{event['seconds']:.1f}s",
                highlight=False,
            )
        elif kind == "end" and self.task is not None:
            self.bar.remove_task(self.task)
            self.task = self.tasks.pop() if self.tasks else None

    def close(self) -> None:
        if self.started:
            self.bar.stop()
            self.started = False


def metrics_table(title: str, records: list[dict[str, Any]]) -> None:
    from robustmia.reporting.tables import LOW_FPR_NOTE, low_fpr_mark

    rows = []
    for r in records:
        lo, hi = r["ci95"].get("inference_accuracy", [float("nan")] * 2)
        rows.append([r["attack"], r["threshold_selection"], f"{r['inference_accuracy']:.4f} [{lo:.3f}, {hi:.3f}]",
                     r["precision"], r["recall"], r["auprc"], r["kl_divergence"], r["roc_auc"],
                     f"{r['tpr_at_fpr']['0.001']:.4f}{low_fpr_mark(r, 0.001)}", f"{r['tpr_at_fpr']['0.01']:.4f}{low_fpr_mark(r, 0.01)}",
                     r["advantage"]])
    table(title, ["attack", "threshold", "accuracy [95% CI]", "precision", "recall", "AUPRC", "KL", "ROC AUC",
                   "TPR@0.1%", "TPR@1%", "advantage"], rows)
    if records:
        r = records[0]
        print(f"{r['n_members']} members + {r['n_nonmembers']} non-members; accuracy is balanced, (TPR + TNR) / 2; CIs from "
              f"{r['n_bootstrap']} bootstrap resamples; an oracle threshold is chosen on the evaluation set itself (an optimistic upper bound)")
        print(LOW_FPR_NOTE)


def evaluation_table(result: dict[str, Any]) -> None:
    rows = [["train (members)", result["n_train"], result["train_accuracy"], result["train_loss"]],
            ["test", result["n_test"], result["test_accuracy"], result["test_loss"]]]
    for kind in ("adv", "autoattack", "verified"):
        if f"{kind}_train_accuracy" in result:
            rows += [[f"{kind} train", result["n_attacked_train"], result[f"{kind}_train_accuracy"], result.get(f"{kind}_train_loss", "")],
                     [f"{kind} test", result["n_attacked_test"], result[f"{kind}_test_accuracy"], result.get(f"{kind}_test_loss", "")]]
    table(f"{result['model']} ({result['method']}) on {result['dataset']}", ["split", "n", "accuracy", "loss"], rows)
    if "perturbation" in result:
        print(f"perturbation: {json.dumps(result['perturbation'])}")
    if "verification" in result:
        print(f"verified with: {json.dumps(result['verification'])}")
    elif "perturbation" not in result:
        print("no perturbation: the run was trained naturally; pass --eps to evaluate under PGD")
