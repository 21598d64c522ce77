"""The ``robustmia`` command: a thin face over the library.

Every problem a user can cause ends here as one line on stderr and exit code 2; an
interrupted run ends with exit code 130 and says how to resume.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from typer._click import exceptions as click_exc

from robustmia.errors import UserError
from robustmia.progress import Progress

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Train robust image classifiers and audit how much they leak about their training data.",
)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r])
    Console(width=None if sys.stdout.isatty() else 200).print(table)


class _ProgressBar:
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
                f"train loss {event['train_loss']:.4f} acc {event['train_accuracy']:.4f}  "
                f"test loss {event['test_loss']:.4f} acc {event['test_accuracy']:.4f}  {event['seconds']:.1f}s",
                highlight=False,
            )
        elif kind == "end" and self.task is not None:
            self.bar.remove_task(self.task)
            self.task = self.tasks.pop() if self.tasks else None

    def close(self) -> None:
        if self.started:
            self.bar.stop()
            self.started = False


@app.command()
def datasets(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the datasets robustmia can load."""
    from robustmia.data.datasets import DATASETS

    rows = [[d.name, "x".join(map(str, d.shape)), d.num_classes, d.augment, d.description] for d in DATASETS.values()]
    if as_json:
        _print_json([dict(zip(["name", "shape", "classes", "augment", "description"], r)) for r in rows])
    else:
        _table("datasets", ["name", "shape", "classes", "default augmentation", "description"], rows)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the model architectures."""
    from robustmia.models import MODELS

    rows = [[name, spec.description] for name, spec in MODELS.items()]
    if as_json:
        _print_json([{"name": n, "description": d} for n, d in rows])
    else:
        _table("models", ["name", "description"], rows)


@app.command()
def recipes(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the named training recipes (the paper's configurations and CPU variants)."""
    from robustmia.train.recipes import list_recipes

    found = list_recipes()
    if as_json:
        _print_json(found)
    else:
        _table("recipes", ["name", "what"], [[k, v] for k, v in found.items()])


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="Run folder to create (or to continue with --resume)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Start from a named recipe (see `robustmia recipes`)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of training settings; flags override it."),
    dataset: Optional[str] = typer.Option(None, help="digits (default), cifar10 or svhn."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where the dataset lies."),
    download: bool = typer.Option(False, "--download", help="Download the dataset if it is missing."),
    model: Optional[str] = typer.Option(None, help="Architecture (see `robustmia models`)."),
    method: Optional[str] = typer.Option(None, help="Training objective: natural, pgd, trades, fgsm_rs, convex_dual, ibp or crown_ibp."),
    epochs: Optional[int] = typer.Option(None, help="Training length in epochs (default 30)."),
    iterations: Optional[int] = typer.Option(None, help="Training length in iterations (instead of epochs)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, help="Initial learning rate."),
    lr_drops: Optional[str] = typer.Option(None, "--lr-drops", help="Piecewise-constant schedule, e.g. 40000:0.01,60000:0.001."),
    lr_unit: Optional[str] = typer.Option(None, "--lr-unit", help="Unit of the --lr-drops boundaries: epoch or iteration."),
    momentum: Optional[float] = typer.Option(None),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay"),
    augment: Optional[str] = typer.Option(None, help="auto (the dataset's default), none or crop-flip."),
    train_size: Optional[int] = typer.Option(None, "--train-size", help="Number of members (default: the whole train split)."),
    seed: Optional[int] = typer.Option(None),
    eps: Optional[str] = typer.Option(None, help="Training epsilon in pixel units, e.g. 8/255 (pgd, trades, fgsm_rs)."),
    attack_steps: Optional[int] = typer.Option(None, "--attack-steps", help="Steps of the training-time attack (pgd: 7, trades: 10)."),
    step_size: Optional[str] = typer.Option(None, "--step-size", help="Step of the training-time attack, e.g. 2/255 (default eps/4; fgsm_rs 1.25 eps)."),
    random_start: Optional[bool] = typer.Option(None, "--random-start/--no-random-start", help="Random start of the training-time attack."),
    attack_mode: Optional[str] = typer.Option(None, "--attack-mode", help="BatchNorm mode of the training-time attack: train or eval."),
    trades_beta: Optional[float] = typer.Option(None, "--trades-beta", help="TRADES robustness weight (default 6)."),
    amp: Optional[str] = typer.Option(None, "--amp", help="off, or bf16: autocast the training step (evaluation stays float32)."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="channels_last memory format (GPUs)."),
    compile_model: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the model for training."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or epoch lines."),
    as_json: bool = typer.Option(False, "--json", help="Print the last epoch's record as JSON."),
) -> None:
    """Train a model into a run folder."""
    from robustmia.train.config import TrainConfig
    from robustmia.train.loop import train as run_training
    from robustmia.train.run import read_config_dict
    from robustmia.validation import read_yaml, validate

    settings: dict[str, Any] = {}
    if resume:
        settings.update(read_config_dict(out) or {})
    sources = []
    if recipe is not None:
        from robustmia.train.recipes import load_recipe

        settings.update(load_recipe(recipe))
        sources.append(f"recipe {recipe}")
    if config is not None:
        settings.update(read_yaml(config))
        sources.append(str(config))
    flags = dict(
        dataset=dataset, data_dir=data_dir, model=model, method=method, epochs=epochs, iterations=iterations,
        batch_size=batch_size, lr=lr, lr_drops=lr_drops, lr_unit=lr_unit, momentum=momentum,
        weight_decay=weight_decay, augment=augment, train_size=train_size, seed=seed, eps=eps,
        attack_steps=attack_steps, step_size=step_size, random_start=random_start, attack_mode=attack_mode,
        trades_beta=trades_beta, amp=amp, channels_last=channels_last, compile=compile_model,
    )
    given = {k: v for k, v in flags.items() if v is not None}
    if given.get("epochs") is not None or given.get("iterations") is not None:
        settings.pop("epochs", None)
        settings.pop("iterations", None)
    settings.update(given)
    if given:
        sources.append("flags")
    cfg = validate(TrainConfig, settings, " + ".join(sources) or "defaults")
    lead = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports
    bar: Optional[Progress] = None if quiet or not lead else _ProgressBar()
    try:
        record = run_training(cfg, out, resume=resume, device=device, download=download, progress=bar)
    except KeyboardInterrupt:
        raise UserError(f"interrupted; continue with: robustmia train --out {out} --resume") from None
    finally:
        if bar is not None:
            bar.close()
    if as_json and lead:
        _print_json(record)
    elif not quiet:
        typer.echo(f"trained {cfg.model} on {cfg.dataset} into {out}: train accuracy {record['train_accuracy']:.4f}, "
                   f"test accuracy {record['test_accuracy']:.4f}")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder written by `robustmia train`."),
    eps: Optional[str] = typer.Option(None, help="Attack epsilon, e.g. 8/255 (default: the run's training eps; none: clean only)."),
    attack_steps: int = typer.Option(20, "--attack-steps", help="PGD steps."),
    step_size: Optional[str] = typer.Option(None, "--step-size", help="PGD step (default eps/8: 1/255 at 8/255)."),
    restarts: int = typer.Option(1, help="PGD restarts (the worst point per example is kept)."),
    random_start: bool = typer.Option(True, "--random-start/--no-random-start"),
    autoattack: bool = typer.Option(False, "--autoattack", help="Also run AutoAttack (needs torchattacks)."),
    bound: str = typer.Option("crown", help="Bound for verified accuracy of certifiable models: crown, wong-kolter, crown-ibp, ibp or none."),
    max_examples: Optional[int] = typer.Option(None, "--max-examples", min=1, help="Attack only the first N members and test images."),
    seed: int = typer.Option(0, help="Seed of the attack's random starts."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(500, "--batch-size", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Clean and adversarial accuracy of a run on its members (train) and the test split."""
    from robustmia.robust.evaluate import EvalAttack, evaluate_model
    from robustmia.train.run import Run

    run = Run.open(run_dir)
    attack = EvalAttack.from_options(
        eps=eps, default_eps=run.config.eps, steps=attack_steps, step_size=step_size, restarts=restarts,
        random_start=random_start, seed=seed, autoattack=autoattack,
    )
    model = run.load_model(device)
    members, test = run.data()
    from robustmia.robust.bounds import METHODS

    if bound != "none" and bound not in METHODS:
        raise UserError(f"unknown bound {bound!r}; choose one of: {', '.join(METHODS)}, none")
    scores = evaluate_model(model, members, test, attack, num_classes=run.info.num_classes, batch_size=batch_size,
                            max_examples=max_examples, bound=None if bound == "none" else bound)
    result = {"run": str(run_dir), "dataset": run.config.dataset, "model": run.config.model, "method": run.config.method, **scores}
    if as_json:
        _print_json(result)
        return
    rows = [["train (members)", result["n_train"], result["train_accuracy"], result["train_loss"]],
            ["test", result["n_test"], result["test_accuracy"], result["test_loss"]]]
    for kind in ("adv", "autoattack", "verified"):
        if f"{kind}_train_accuracy" in result:
            rows += [[f"{kind} train", result["n_attacked_train"], result[f"{kind}_train_accuracy"], result.get(f"{kind}_train_loss", "")],
                     [f"{kind} test", result["n_attacked_test"], result[f"{kind}_test_accuracy"], result.get(f"{kind}_test_loss", "")]]
    _table(f"{run.config.model} ({run.config.method}) on {run.config.dataset}", ["split", "n", "accuracy", "loss"], rows)
    if "attack" in result:
        typer.echo(f"attack: {json.dumps(result['attack'])}")
    if "verification" in result:
        typer.echo(f"verified with: {json.dumps(result['verification'])}")
    else:
        typer.echo("no attack: the run was trained naturally; pass --eps to evaluate under PGD")


def _metrics_table(title: str, records: list[dict[str, Any]]) -> None:
    rows = []
    for r in records:
        lo, hi = r["ci95"].get("inference_accuracy", [float("nan")] * 2)
        rows.append([r["attack"], r["threshold_selection"], f"{r['inference_accuracy']:.4f} [{lo:.3f}, {hi:.3f}]",
                     r["precision"], r["recall"], r["auprc"], r["kl_divergence"], r["roc_auc"],
                     r["tpr_at_fpr"]["0.001"], r["tpr_at_fpr"]["0.01"], r["advantage"]])
    _table(title, ["attack", "threshold", "accuracy [95% CI]", "precision", "recall", "AUPRC", "KL", "ROC AUC",
                   "TPR@0.1%", "TPR@1%", "advantage"], rows)
    if records:
        r = records[0]
        typer.echo(f"{r['n_members']} members + {r['n_nonmembers']} non-members; CIs from {r['n_bootstrap']} bootstrap "
                   "resamples; an oracle threshold is chosen on the evaluation set itself (an optimistic upper bound)")


@app.command()
def attack(
    run_dir: Path = typer.Argument(..., help="A run folder written by `robustmia train`."),
    attacks: str = typer.Option(",".join(("confidence", "loss", "entropy", "modified-entropy", "lira", "rmia", "shadow")),
                                "--attacks", help="Comma-separated attacks (see --help of `robustmia attack`)."),
    threshold: str = typer.Option("oracle", help="Threshold selection of threshold attacks: oracle, shadow or both."),
    per_class: bool = typer.Option(False, "--per-class", help="One threshold per class."),
    references: int = typer.Option(16, help="Reference/shadow models, trained with the target's recipe (even)."),
    stack_references: int = typer.Option(16, "--stack-references",
                                         help="Train reference models in stacks of this many at once where it pays off (1: one by one)."),
    eval_size: Optional[int] = typer.Option(None, "--eval-size", help="Members (and as many non-members) to evaluate on."),
    population: int = typer.Option(2000, help="Population examples for RMIA."),
    eps: Optional[str] = typer.Option(None, help="Epsilon of the PGD inputs for adv-* attacks (default: the run's)."),
    attack_steps: int = typer.Option(20, "--attack-steps"),
    step_size: Optional[str] = typer.Option(None, "--step-size", help="PGD step (default eps/8)."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, help="Seed of the evaluation subset, keep masks and reference models."),
    device: str = typer.Option("auto"),
    quiet: bool = typer.Option(False, "--quiet"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON record per attack."),
) -> None:
    """Membership-inference attacks on a trained run; records saved under RUN_DIR/audit/.

    Attacks: confidence, loss, entropy, modified-entropy (and adv-* on PGD inputs,
    loss-increase), lira, lira-offline, lira-fixed, lira-offline-fixed, rmia, rmia-offline,
    shadow (Shokri et al.)."""
    from robustmia.experiments.audit import audit_run
    from robustmia.experiments.settings import AuditSettings
    from robustmia.train.run import Run
    from robustmia.validation import validate

    run = Run.open(run_dir)
    settings = validate(AuditSettings, dict(
        attacks=attacks, threshold=threshold, per_class=per_class, references=references,
        stack_references=stack_references, eval_size=eval_size,
        population=population, eps=eps, attack_steps=attack_steps, step_size=step_size, bootstrap=bootstrap, seed=seed,
    ), "attack options")
    bar: Optional[Progress] = None if quiet or as_json else _ProgressBar()
    try:
        records = audit_run(run, settings, device=device, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        _print_json(records)
    else:
        _metrics_table(f"membership inference on {run_dir}", records)


@app.command("audit-scores")
def audit_scores(
    file: Path = typer.Argument(..., help=".npz with labels (N,), member (N,) and probs (N,C) or logits (N,C)."),
    bootstrap: int = typer.Option(1000, min=0, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON record per attack."),
) -> None:
    """Audit any black-box model from a file of its predictions (threshold attacks, oracle threshold)."""
    from robustmia.privacy.attacks import AttackInputs, run_attack
    from robustmia.privacy.attacks.threshold import THRESHOLD_SIGNALS
    from robustmia.privacy.metrics import evaluate_scores
    from robustmia.privacy.predictions import load_predictions
    from robustmia.privacy.signals import signals_from_logits

    logits, labels, member = load_predictions(file)
    inputs = AttackInputs(target=signals_from_logits(logits, labels), labels=labels)
    records = []
    for name in THRESHOLD_SIGNALS:
        result = run_attack(name, inputs)
        m = evaluate_scores(result.scores, member, attack=name, losses=inputs.target["loss"], n_bootstrap=bootstrap, seed=seed)
        records.append(m.to_dict())
    if as_json:
        _print_json(records)
    else:
        _metrics_table(f"membership inference from {file}", records)


class ScaleOptions:
    """The options of `run` and `reproduce` that say where a study's tasks run."""

    backend = typer.Option("local", "--backend", help="local (this process) or ray (a Ray cluster; pip install 'robustmia[ray]').")
    address = typer.Option(None, "--address", help="Ray: the cluster's address (`ray start --head` prints it); default: start a local one.")
    workers = typer.Option(None, "--workers", min=1, help="Ray without --address: CPUs of the local cluster (default: all).")
    threads = typer.Option(None, "--threads", min=1, help="Torch threads per task (Ray default 1; CPUs per task). Same --threads, same numbers on either backend.")


def _run_study(spec_path: Path, out: Path, *, resume: bool, device: str, quiet: bool, data_dir: Optional[str],
               backend: str = "local", address: Optional[str] = None, workers: Optional[int] = None, threads: Optional[int] = None) -> None:
    from robustmia.experiments.spec import load_spec

    spec, configs = load_spec(spec_path, data_dir)  # validated in full before anything heavy is imported
    from robustmia.experiments.backends import make_backend
    from robustmia.experiments.runner import run_study
    from robustmia.report.build import write_report

    bar: Optional[Progress] = None if quiet else _ProgressBar()
    tasks = None
    try:
        tasks = make_backend(backend, address=address, workers=workers, threads=threads, device=device, progress=bar)
        results = run_study(spec, configs, spec_path, out, resume=resume, device=device, progress=bar, backend=tasks)
    except KeyboardInterrupt:
        raise UserError(f"interrupted; continue the study with --resume (--out {out})") from None
    finally:
        if bar is not None:
            bar.close()
        if tasks is not None:
            tasks.close()
    summary = write_report(spec.name, spec.description, results, out / "report")
    if not quiet:
        for line in summary["findings"]:
            typer.echo(line)
        typer.echo(f"report: {out / 'report' / 'report.html'}")


@app.command("run")
def run_spec(
    spec: Path = typer.Argument(..., help="Study spec (YAML)."),
    out: Path = typer.Option(..., "--out", help="Study folder (runs, results, report)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted study."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder with one sub-folder per dataset (cifar10/, svhn/); overrides the spec."),
    device: str = typer.Option("auto"),
    quiet: bool = typer.Option(False, "--quiet"),
    backend: str = ScaleOptions.backend,
    address: Optional[str] = ScaleOptions.address,
    workers: Optional[int] = ScaleOptions.workers,
    threads: Optional[int] = ScaleOptions.threads,
) -> None:
    """Run a study: train what is missing, evaluate, attack, and write the report."""
    _run_study(spec, out, resume=resume, device=device, quiet=quiet, data_dir=data_dir,
               backend=backend, address=address, workers=workers, threads=threads)


@app.command()
def reproduce(
    name: Optional[str] = typer.Argument(None, help="Preset name (see --list)."),
    list_presets: bool = typer.Option(False, "--list", help="List the presets."),
    out: Optional[Path] = typer.Option(None, "--out", help="Study folder (default runs/NAME)."),
    resume: bool = typer.Option(False, "--resume"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder with one sub-folder per dataset, e.g. ../shared/data."),
    device: str = typer.Option("auto"),
    quiet: bool = typer.Option(False, "--quiet"),
    backend: str = ScaleOptions.backend,
    address: Optional[str] = ScaleOptions.address,
    workers: Optional[int] = ScaleOptions.workers,
    threads: Optional[int] = ScaleOptions.threads,
) -> None:
    """Reproduce the paper's experiments from a named preset (quick: the whole paper on digits in minutes)."""
    from robustmia.experiments.presets import list_presets as presets, preset_path

    if list_presets or name is None:
        _table("presets", ["name", "what"], [[k, v] for k, v in presets().items()])
        return
    path = preset_path(name)
    _run_study(path, out or Path("runs") / name, resume=resume, device=device, quiet=quiet, data_dir=data_dir,
               backend=backend, address=address, workers=workers, threads=threads)


def main(argv: Optional[list[str]] = None) -> None:
    try:
        rc = app(args=argv, prog_name="robustmia", standalone_mode=False)
    except UserError as e:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one line from rank 0 (all ranks hit the same error)
            typer.echo(f"robustmia: error: {e}", err=True)
        sys.exit(2)
    except click_exc.NoArgsIsHelpError as e:
        typer.echo(e.format_message(), err=True)
        sys.exit(2)
    except click_exc.ClickException as e:
        typer.echo(f"robustmia: error: {' '.join(e.format_message().split())}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("robustmia: interrupted", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
