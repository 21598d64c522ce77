"""What the CLI shows a person: tables, JSON, and a progress bar fed by progress events.

The only module besides cli.py that writes to the terminal."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Iterator, Optional


class Interrupted(Exception):
    """Ctrl-C during long work: the message says how to continue."""


@contextlib.contextmanager
def progress(show: bool, resume_hint: str) -> Iterator[Optional["ProgressBar"]]:
    """A progress bar (or none) for the block; Ctrl-C becomes :class:`Interrupted` with ``resume_hint``."""
    bar = ProgressBar() if show else None
    try:
        yield bar
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {resume_hint}") from None
    finally:
        if bar is not None:
            bar.close()


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


MAX_LINE = 600  # characters of an error line: the first offending field and how to fix it come first, and fit


def error_line(message: str) -> str:
    """An error as one line a person reads: new lines joined, and cut at MAX_LINE characters."""
    from robustmia.validation import cut

    return cut(" ".join(message.split()), MAX_LINE)


def number(v: Any, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def epoch_line(event: dict[str, Any]) -> str:
    """One epoch's record as a line that names what is training and how far it is."""
    where = f"{event['task']}: " if event.get("task") else ""
    of = f"/{event['epochs']}" if event.get("epochs") else ""
    test = f"  test loss {number(event['test_loss'])} acc {number(event['test_accuracy'])}" if "test_loss" in event else ""
    return (f"{where}epoch {event['epoch']}{of}  step {event['step']}  lr {event['lr']:g}  train loss {number(event['train_loss'])} "
            f"acc {number(event['train_accuracy'])}{test}  {event['seconds']:.1f}s")


class ProgressBar:
    """Turns progress events into a rich progress bar on stderr, and epoch records into lines. On a
    terminal the bar redraws in place; elsewhere (a log file, a pipe) each task says when it starts,
    every tenth of the way and when it ends, one line each, never wrapped."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        if not self.live:
            self.console = Console(stderr=True, width=100_000, soft_wrap=True)
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, transient=True,
        )
        self.task = None
        self.tasks: list = []
        self.started = False
        self.plain: list[dict[str, Any]] = []  # the open tasks without a live bar: name, total, done, start time

    def _line(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def _plain(self, event: dict[str, Any]) -> None:
        import time

        kind = event["event"]
        if kind == "start":
            task = {"name": event["task"], "total": event["total"], "done": event.get("completed", 0), "at": time.monotonic()}
            self.plain.append(task)
            self._line(f"{task['name']}: started ({task['done']}/{task['total']})")
        elif kind == "advance" and self.plain:
            task = self.plain[-1]
            before = task["done"]
            task["done"] += event["steps"]
            if task["total"] and int(10 * task["done"] / task["total"]) > int(10 * before / task["total"]) and task["done"] < task["total"]:
                self._line(f"{task['name']}: {task['done']}/{task['total']} ({time.monotonic() - task['at']:.0f}s)")
        elif kind == "end" and self.plain:
            task = self.plain.pop()
            self._line(f"{task['name']}: done ({task['done']}/{task['total']}, {time.monotonic() - task['at']:.0f}s)")

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "record":
            self._line(epoch_line(event))
        elif not self.live:
            self._plain(event)
        elif kind == "start":
            if not self.started:
                self.bar.start()
                self.started = True
            if self.task is not None:
                self.tasks.append(self.task)
            self.task = self.bar.add_task(event["task"], total=event["total"], completed=event.get("completed", 0))
        elif kind == "advance" and self.task is not None:
            self.bar.advance(self.task, event["steps"])
        elif kind == "end" and self.task is not None:
            self.bar.remove_task(self.task)
            self.task = self.tasks.pop() if self.tasks else None

    def close(self) -> None:
        if self.started:
            self.bar.stop()
            self.started = False


def metrics_table(title: str, records: list[dict[str, Any]]) -> None:
    """An audit's records as the summary every face shows (privacy.summary): the calibrated accuracy first."""
    from robustmia.privacy.summary import summary_table

    columns, rows, notes = summary_table(records)
    table(title, columns, rows)
    for line in notes:
        print(line)


def dp_audit_table(title: str, records: list[dict[str, Any]]) -> None:
    """Each attack's two one-run bounds (per attack), then the audit's one statement over all attacks."""
    from robustmia.privacy.dp_audit import headline

    def gdp(r: dict[str, Any]) -> str:
        g = r.get("gdp") or {}
        return "" if g.get("mu_lower_bound") is None else f"{g['mu_lower_bound']:.3f} [{g['epsilon_at_delta']:.3f}]"

    rows = [[r["attack"], r["threshold_selection"], f"{r['epsilon_lower_bound']:.3f}", gdp(r), f"{r['confidence']:.0%}", r["m"],
             f"{r['k_pos']} / {r['k_neg']}", f"{r['correct']} of {r['guesses']}", r["canaries"],
             "" if r.get("accountant_epsilon") is None else f"{r['accountant_epsilon']:.3f}"] for r in records]
    table(title + " (per attack)", ["attack", "threshold", "epsilon lower bound", "mu-GDP refuted [epsilon at delta]", "confidence",
                                    "canaries m", "k+ / k-", "correct", "kind", "accountant epsilon"], rows)
    if not records:
        return
    print(f"delta {records[0]['delta']:g}; (k+, k-): {records[0]['selection']}. The epsilon lower bound refutes any (epsilon, "
          "delta)-DP guarantee of the recipe; mu-GDP refuted is a Gaussian-DP claim (as DP-SGD's analyses make), its epsilon "
          "that of such a mechanism at delta. The canaries' coins are the random trials.")
    h = headline(records)
    if h is not None:
        print(f"over all {h['attacks']} attacks at {h['confidence']:.0%} (Bonferroni): epsilon >= {h['epsilon_lower_bound']:.3f} "
              f"({h['epsilon_attack']}); mu-GDP refuted up to {h['mu_lower_bound']:.3f} ({h['mu_attack']}; epsilon "
              f"{h['epsilon_at_delta']:.3f} at delta {h['delta']:g})" + _accountant_line(records[0], h))


def _accountant_line(record: dict[str, Any], h: dict[str, Any]) -> str:
    """Where a DP run's accountant stands beside the audit's statement (a bound above it is a bug)."""
    eps, mu = record.get("accountant_epsilon"), record.get("accountant_mu")
    if eps is None:
        return "; not a DP run: lower bounds on any DP guarantee its recipe could have"
    above = h["epsilon_lower_bound"] > eps or h["epsilon_at_delta"] > eps
    return (f"; the accountant: epsilon {eps:.3f}" + (f" (the Gaussian curve through it: mu {mu:.3f})" if mu is not None else "")
            + (", which a bound EXCEEDS: a bug in the recipe, the accountant or the audit" if above else ", above both bounds, as it must be"))


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


def plan_table(plan: Any) -> None:
    """A study's plan (experiments.plan.Plan): each target's FLOPs by part and the estimated time, then the total."""
    parts = ["training", "references", "evaluation", "audit", "tracking"]
    scale, unit = next(((10.0 ** e, u) for e, u in ((18, "EFLOP"), (15, "PFLOP"), (12, "TFLOP")) if plan.total >= 10 * 10.0 ** e), (1e9, "GFLOP"))
    rows = [[t.name, t.model, t.method, f"{t.members:,}", f"{t.epochs:g}", f"{t.step / 1e9:.3g}",
             *[f"{t.parts.get(p, 0) / scale:,.1f}" for p in parts], _minutes(plan.seconds(t.total))] for t in plan.targets]
    table(f"what the study will cost ({unit} by part; time at the stated throughput)",
          ["target", "model", "method", "members", "epochs", "GFLOP/image/step", *parts, "time"], rows)
    sys.stdout.write(f"total {plan.total / scale:,.1f} {unit}: about {_minutes(plan.seconds(plan.total))} at {plan.tflops:g} TFLOP/s "
                     f"({plan.basis}); probes of label-only attacks are not counted, and small models at small batches run "
                     "slower than this on a GPU\n")


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def show_warnings() -> None:
    """robustmia's warnings as one line each on stderr (others as Python shows them)."""
    import warnings

    from robustmia.errors import RobustmiaWarning

    shown = warnings.showwarning
    if getattr(shown, "robustmia", None) is not None:
        shown.robustmia.clear()  # each command says each warning once
        return
    said: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RobustmiaWarning):
            if os.environ.get("RANK", "0") == "0" and str(message) not in said:
                said.add(str(message))
                sys.stderr.write(f"robustmia: warning: {message}\n")
        else:
            shown(message, category, filename, lineno, file, line)

    show.robustmia = said
    warnings.showwarning = show
    warnings.simplefilter("always", RobustmiaWarning)


def listing(title: str, columns: list[str], rows: list[list[Any]], as_json: bool) -> None:
    """A listing (datasets, models) as a table, or as JSON objects keyed by the columns' last words."""
    if as_json:
        print_json([dict(zip([c.split(" ")[-1] for c in columns], r)) for r in rows])
    else:
        table(title, columns, rows)


def attack_help() -> str:
    """The attacks, one line each, for ``robustmia attack --help``."""
    from robustmia.errors import UserError

    try:
        from robustmia.privacy.attacks import ATTACKS
    except UserError:  # a broken plugin: main() reports it in one line
        return ""
    return "Attacks:\n\n\b\n" + "\n".join(f"{a.name}: {a.help}" for a in ATTACKS.values())
