"""The ``robustmia`` command: parsing, one call into the library (robustmia.api), printing.

Every problem a user can cause ends here as one line on stderr and exit code 2; an
interrupted command ends with exit code 130 and says how to resume.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from typer._click import exceptions as click_exc

from robustmia import console
from robustmia.cli_options import ExternalOptions as X, OneRunOptions as O, ProbeOptions as P, StudyOptions
from robustmia.errors import UserError
from robustmia.robust.bound_names import BOUNDS
from robustmia.training.methods import METHODS

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Train robust image classifiers and audit how much they leak about their training data.",
)


@app.command()
def datasets(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the datasets robustmia can load."""
    from robustmia.data.catalog import DATASETS
    rows = [[d.name, "x".join(map(str, d.shape)), d.num_classes or "from the files", d.augment, d.description] for d in DATASETS.values()]
    console.listing("datasets", ["name", "shape", "classes", "default augment", "description"], rows, as_json)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the model architectures."""
    from robustmia.models import MODELS
    console.listing("models", ["name", "description"], [[name, spec.description] for name, spec in MODELS.items()], as_json)


@app.command()
def recipes(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the named training recipes (the paper's configurations and CPU variants)."""
    from robustmia.training.recipes import list_recipes

    found = list_recipes()
    console.print_json(found) if as_json else console.table("recipes", ["name", "what"], [[k, v] for k, v in found.items()])


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="Run folder to create (or to continue with --resume)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Start from a named recipe (see `robustmia recipes`)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of training settings; flags override it."),
    dataset: Optional[str] = typer.Option(None, help="Dataset (see `robustmia datasets`; default digits)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where the dataset lies: its folder, or a folder of dataset folders."),
    download: bool = typer.Option(False, "--download", help="Download the dataset if it is missing."),
    model: Optional[str] = typer.Option(None, help="Architecture (see `robustmia models`)."),
    method: Optional[str] = typer.Option(None, help=f"Training objective: {', '.join(METHODS)}."),
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
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Score the test split every N epochs (and after the last); 0: never."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Write a checkpoint every N epochs (and after the last)."),
    amp: Optional[str] = typer.Option(None, "--amp", help="off, or bf16: autocast the training step (evaluation stays float32)."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="channels_last memory format (GPUs)."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the model for training."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or epoch lines."),
    as_json: bool = typer.Option(False, "--json", help="Print the last epoch's record as JSON."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Any other setting as KEY=VALUE, e.g. dp_noise=1.5 or early_stop=true (repeatable)."),
) -> None:
    """Train a model into a run folder. (One option per training setting: the signature is long by design.)"""
    from robustmia import api

    flags = {k: v for k, v in locals().items() if k not in ("out", "recipe", "config", "download", "resume", "device", "quiet", "as_json", "api", "set_")}
    cfg = api.train_config(out=out, resume=resume, recipe=recipe, config_file=config, pairs=set_ or [], **flags)
    lead = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports
    with console.progress(lead and not quiet, f"continue with: robustmia train --out {out} --resume") as bar:
        record = api.train(cfg, out, resume=resume, device=device, download=download, progress=bar)
    if as_json and lead:
        console.print_json(record)
    elif not quiet and lead:
        typer.echo(f"trained {cfg.model} on {cfg.dataset} into {out}: train accuracy {console.number(record.get('train_accuracy'))}" +
                   (f", test accuracy {console.number(record['test_accuracy'])}" if "test_accuracy" in record else ""))


@app.command()
def evaluate(
    run_dir: Optional[Path] = typer.Argument(None, help="A run folder written by `robustmia train` (or a model trained elsewhere: --arch ...)."),
    eps: Optional[str] = typer.Option(None, help="Perturbation epsilon, e.g. 8/255 (default: the run's training eps; none: clean only)."),
    attack_steps: int = typer.Option(20, "--attack-steps", help="PGD steps."),
    step_size: Optional[str] = typer.Option(None, "--step-size", help="PGD step (default eps/8: 1/255 at 8/255)."),
    restarts: int = typer.Option(1, help="PGD restarts (the worst point per example is kept)."),
    random_start: bool = typer.Option(True, "--random-start/--no-random-start"),
    autoattack: bool = typer.Option(False, "--autoattack", help="Also run AutoAttack (needs torchattacks)."),
    bound: str = typer.Option("crown", help=f"Bound for verified accuracy of certifiable models: {', '.join(BOUNDS)} or none."),
    max_examples: Optional[int] = typer.Option(None, "--max-examples", min=1, help="Perturb only the first N members and test images."),
    seed: int = typer.Option(0, help="Seed of the PGD random starts."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(500, "--batch-size", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    arch: Optional[str] = X.arch, arch_args: Optional[str] = X.arch_args, weights: Optional[Path] = X.weights,
    normalize: Optional[str] = X.normalize, dataset: Optional[str] = X.dataset, data_dir: Optional[str] = X.data_dir,
    members: Optional[Path] = X.members, index_order: Optional[str] = X.index_order, members_dir: Optional[str] = X.members_dir,
    nonmembers_dir: Optional[str] = X.nonmembers_dir,
    image_size: Optional[int] = X.image_size, trained_with: Optional[str] = X.trained_with, out: Optional[Path] = X.out,
    threat_model: Optional[str] = X.threat_model, model_dir: Optional[str] = X.model_dir, download: bool = X.download,
) -> None:
    """Clean and adversarial accuracy of a run on its members (train) and the test split, or of a model
    trained elsewhere on its members and non-members."""
    from robustmia import api

    options = {k: v for k, v in locals().items() if k not in ("run_dir", "as_json", "api")}
    result = api.evaluate(run_dir, **options)
    console.print_json(result) if as_json else console.evaluation_table(result)


@app.command(help=f"Membership-inference attacks on a trained run (results saved under RUN_DIR/audit/), or on a model trained elsewhere (--arch, --weights, --dataset, --members; results under --out).\n\n{console.attack_help()}")
def attack(
    run_dir: Optional[Path] = typer.Argument(None, help="A run folder written by `robustmia train` (or a model trained elsewhere: --arch ...)."),
    attacks: Optional[str] = typer.Option(None, "--attacks", help="Comma-separated attacks (default: the threshold attacks, lira, rmia, shadow)."),
    threshold: str = typer.Option("oracle", help="Threshold selection of threshold attacks: oracle, shadow or both."),
    per_class: bool = typer.Option(False, "--per-class", help="One threshold per class."),
    references: Optional[int] = typer.Option(None, help="Reference/shadow models, trained with the target's recipe (even; default 16, or as many as --reference-weights gives)."),
    stack_references: int = typer.Option(16, "--stack-references", help="Train reference models in stacks of this many where it pays off (1: one by one)."),
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
    arch: Optional[str] = X.arch, arch_args: Optional[str] = X.arch_args, weights: Optional[Path] = X.weights,
    normalize: Optional[str] = X.normalize, dataset: Optional[str] = X.dataset, data_dir: Optional[str] = X.data_dir,
    members: Optional[Path] = X.members, index_order: Optional[str] = X.index_order, members_dir: Optional[str] = X.members_dir,
    nonmembers_dir: Optional[str] = X.nonmembers_dir,
    image_size: Optional[int] = X.image_size, trained_with: Optional[str] = X.trained_with, out: Optional[Path] = X.out,
    threat_model: Optional[str] = X.threat_model, model_dir: Optional[str] = X.model_dir, download: bool = X.download,
    reference_recipe: Optional[str] = X.reference_recipe, reference_train: Optional[list[str]] = X.reference_train,
    reference_weights: Optional[list[Path]] = X.reference_weights, reference_keep: Optional[Path] = X.reference_keep,
    boundary_bisections: int = P.bisections, probe_steps: int = P.steps, noise_draws: int = P.draws, adv_restarts: int = P.restarts,
    bound: str = P.bound, delta: float = P.delta,
) -> None:
    from robustmia import api

    settings = {k: v for k, v in locals().items() if k not in ("run_dir", "device", "quiet", "as_json", "api") and v is not None}
    with console.progress(not (quiet or as_json), "run the same command again to continue") as bar:
        result = api.audit(run_dir, device=device, progress=bar, **settings)
    for warning in result.about.get("warnings", []):
        typer.echo(f"robustmia: warning: {warning}", err=True)
    title = f"membership inference on {run_dir or arch or 'the model'}"
    console.print_json(result.records()) if as_json else console.metrics_table(title, result.records())


@app.command("dp-audit")
def dp_audit(run_dir: Path = O.run, attacks: str = O.attacks, k: Optional[str] = O.k, confidence: float = O.confidence,
             delta: Optional[float] = O.delta, references: Optional[int] = O.references, bootstrap: int = O.bootstrap,
             device: str = typer.Option("auto"), quiet: bool = typer.Option(False, "--quiet"), as_json: bool = O.as_json) -> None:
    """A valid epsilon lower bound from one training run (Steinke, Nasr & Jagielski 2023), for any recipe, DP or not."""
    from robustmia import api

    with console.progress(not (quiet or as_json), "run the same command again to continue") as bar:
        result = api.dp_audit(run_dir, attacks=attacks, k=k, confidence=confidence, delta=delta, device=device, progress=bar,
                              bootstrap=bootstrap, **({"references": references} if references is not None else {}))
    records = [a.details["dp_audit"] | {"threshold_selection": a.threshold_selection} for a in result.attacks]
    console.print_json(records) if as_json else console.dp_audit_table(f"one-run DP audit of {run_dir}", records)


@app.command("audit-scores")
def audit_scores(
    file: Path = typer.Argument(..., help=".npz with labels (N,), member (N,) and probs (N,C) or logits (N,C)."),
    bootstrap: int = typer.Option(1000, min=0, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON record per attack."),
) -> None:
    """Audit any black-box model from a file of its predictions (threshold attacks, oracle threshold)."""
    from robustmia import api

    records = api.audit_predictions(file, bootstrap=bootstrap, seed=seed).records()
    console.print_json(records) if as_json else console.metrics_table(f"membership inference from {file}", records)


def _study(spec: Any, out: Path, quiet: bool, plan: bool = False, throughput: Optional[float] = None, as_json: bool = False,
           **options: Any) -> None:
    from robustmia import api

    if plan:
        found = api.plan_study(spec, data_dir=options["data_dir"], tiny=options["tiny"], throughput=throughput,
                               device=options["device"], allow_code=options["allow_code"])
        console.print_json(found.to_dict()) if as_json else console.plan_table(found)
        return
    if throughput is not None or as_json:
        raise UserError(f"{'--throughput' if throughput is not None else '--json'} goes with --plan; add --plan, or drop it")
    with console.progress(not quiet, f"continue the study with --resume (--out {out})") as bar:
        summary = api.run_study(spec, out, progress=bar, **options)
    if not quiet:
        for line in summary["findings"]:
            typer.echo(line)
        typer.echo(f"report: {out / 'report' / 'report.html'}")


@app.command("run")
def run_spec(
    spec: Path = typer.Argument(..., help="Study spec (YAML)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Study folder (runs, results, report); not needed with --plan."), tiny: bool = StudyOptions.tiny,
    resume: bool = StudyOptions.resume, data_dir: Optional[str] = StudyOptions.data_dir, device: str = StudyOptions.device,
    quiet: bool = StudyOptions.quiet, backend: str = StudyOptions.backend, address: Optional[str] = StudyOptions.address,
    workers: Optional[int] = StudyOptions.workers, threads: Optional[int] = StudyOptions.threads, allow_code: Optional[list[str]] = StudyOptions.allow_code,
    plan: bool = StudyOptions.plan, throughput: Optional[float] = StudyOptions.throughput, as_json: bool = StudyOptions.plan_json,
) -> None:
    """Run a study: train what is missing, evaluate, attack, and write the report (--plan: its cost first, and stop)."""
    _study(spec, out, quiet, plan, throughput, as_json, resume=resume, data_dir=data_dir, device=device, backend=backend,
           address=address, workers=workers, threads=threads, allow_code=allow_code, tiny=tiny)


@app.command()
def reproduce(
    name: Optional[str] = typer.Argument(None, help="Preset name (see --list)."),
    list_presets: bool = typer.Option(False, "--list", help="List the presets."),
    tiny: bool = StudyOptions.tiny,
    out: Optional[Path] = typer.Option(None, "--out", help="Study folder (default runs/NAME)."),
    resume: bool = StudyOptions.resume, data_dir: Optional[str] = StudyOptions.data_dir, device: str = StudyOptions.device,
    quiet: bool = StudyOptions.quiet, backend: str = StudyOptions.backend, address: Optional[str] = StudyOptions.address,
    workers: Optional[int] = StudyOptions.workers, threads: Optional[int] = StudyOptions.threads, allow_code: Optional[list[str]] = StudyOptions.allow_code,
    plan: bool = StudyOptions.plan, throughput: Optional[float] = StudyOptions.throughput, as_json: bool = StudyOptions.plan_json,
) -> None:
    """Reproduce the paper's experiments from a named preset (quick: the whole paper on digits in minutes; --plan: its cost first, and stop)."""
    from robustmia.experiments.presets import list_presets as presets, preset_path

    if list_presets or name is None:
        console.table("presets", ["name", "what"], [[k, v] for k, v in presets().items()])
        return
    _study(preset_path(name), out or Path("runs") / (f"{name}-tiny" if tiny else name), quiet, plan, throughput, as_json, resume=resume,
           data_dir=data_dir, device=device, backend=backend, address=address, workers=workers, threads=threads, allow_code=allow_code, tiny=tiny)


@app.command()
def report(study_dir: Path = typer.Argument(..., help="A study folder (`robustmia run`, `reproduce`) or an audit folder (attacks.json).")) -> None:
    """Rebuild a study's (or one audit's) tables, figures, findings and report.html from its folder alone (no model or dataset is loaded)."""
    from robustmia import api

    summary = api.report(study_dir)
    typer.echo(f"report: {study_dir / 'report' / 'report.html'} ({len(summary['tables'])} tables, {len(summary['figures'])} figure files)")


def main(argv: Optional[list[str]] = None) -> None:
    console.show_warnings()
    try:
        import robustmia.privacy.attacks  # noqa: F401  (the registry, with the plugins of $ROBUSTMIA_PLUGINS)

        rc = app(args=argv, prog_name="robustmia", standalone_mode=False)
    except UserError as e:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one line from rank 0 (all ranks hit the same error)
            typer.echo(f"robustmia: error: {console.error_line(str(e))}", err=True)
        sys.exit(2)
    except click_exc.NoArgsIsHelpError as e:
        typer.echo(e.format_message(), err=True)
        sys.exit(2)
    except click_exc.ClickException as e:
        typer.echo(f"robustmia: error: {' '.join(e.format_message().split())}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, console.Interrupted) as e:
        typer.echo(f"robustmia: {e if isinstance(e, console.Interrupted) else 'interrupted'}", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
