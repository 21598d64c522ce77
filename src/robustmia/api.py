"""The public Python API, exported at the package root (``from robustmia import audit``).

```python
from robustmia import audit, evaluate, report, run_study, train

train({"dataset": "digits", "model": "digits-cnn", "epochs": 30}, "runs/d")
evaluate("runs/d", eps="0.1")                      # {"train_accuracy": ..., "adv_test_accuracy": ...}
result = audit("runs/d", attacks="confidence,loss", eval_size=300)
print(result.summary()); result.save("runs/d-audit")
run_study("my-study.yaml", "runs/mine")            # or a preset name: run_study("quick", "runs/quick")
report("runs/mine")                                # rebuilds runs/mine/report/ from the folder alone
```

The CLI is a thin face over these functions. Heavy imports happen inside them, so that
``import robustmia`` stays cheap.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from robustmia.errors import UserError, warn
from robustmia.progress import Progress


@contextlib.contextmanager
def _shown(progress: Any) -> Iterator[Optional[Progress]]:
    """The progress events' receiver of a long call: the caller's (a callable, or None for none), or with ``"auto"`` the
    CLI's own progress bar on standard error where that is a terminal (an interactive session), else none."""
    if progress != "auto":
        yield progress
        return
    if not sys.stderr.isatty():
        yield None
        return
    from robustmia.console import ProgressBar

    bar = ProgressBar()
    try:
        yield bar
    finally:
        bar.close()


def train_config(settings: Optional[dict[str, Any]] = None, *, out: Optional[Path] = None, resume: bool = False,
                 recipe: Optional[str] = None, config_file: Optional[Path] = None, pairs: Sequence[str] = (), **flags: Any):
    """The validated TrainConfig of a run, merged in this order: the stored config of ``out``
    (when resuming), ``recipe``, ``config_file`` (YAML), ``settings``, ``pairs`` (``KEY=VALUE``,
    the CLI's ``--set``), then ``flags`` that are not None. A length given as ``epochs`` or
    ``iterations`` replaces the other."""
    from robustmia.training.config import TrainConfig
    from robustmia.training.recipes import load_recipe
    from robustmia.training.run import read_config_dict
    from robustmia.validation import key_values, read_yaml, validate

    settings = {**(settings or {}), **key_values(list(pairs))}
    given = set(settings) | {k for k, v in flags.items() if v is not None}

    merged: dict[str, Any] = {}
    if resume and out is not None:
        stored = read_config_dict(out)
        if stored is None:
            raise UserError(f"{out} holds no run to resume; drop --resume to start one there")
        merged = dict(stored)
    sources = []
    for name, part in ((f"recipe {recipe}", recipe and load_recipe(recipe)), (str(config_file), config_file and read_yaml(config_file)),
                       ("settings", settings), ("flags", {k: v for k, v in flags.items() if v is not None})):
        if part and name == str(config_file):
            given |= set(part)
        if part:
            if part.get("epochs") is not None or part.get("iterations") is not None:
                merged.pop("epochs", None)
                merged.pop("iterations", None)
            merged.update(part)
            sources.append(name)
    config = validate(TrainConfig, merged, " + ".join(sources) or "defaults")
    ignored = config.ignored(given)
    if ignored:
        warn(f"method {config.method} does not use {', '.join(ignored)}; {'it is' if len(ignored) == 1 else 'they are'} ignored")
    return config


def train(config: Any, out: str | Path, *, resume: bool = False, device: str = "auto", download: bool = False,
          progress: Optional[Progress] | str = "auto") -> dict[str, Any]:
    """Train ``config`` (a TrainConfig or a dict of its keys) into the run folder ``out``; return
    the last epoch's record."""
    from robustmia.io import check_out
    from robustmia.validation import check_device

    if isinstance(config, dict):
        config = train_config(config)
    check_device(device)
    config.check(data_present=not download)
    check_out(out)
    from robustmia.training.loop import train as train_loop

    with _shown(progress) as shown:
        return train_loop(config, out, resume=resume, device=device, download=download, progress=shown)


EXTERNAL_KEYS = ("arch", "weights", "arch_args", "normalize", "data_dir", "members_dir", "nonmembers_dir", "image_size", "threat_model",
                 "index_order",
                 "model_dir", "download", "leaderboard",
                 "trained_with", "reference_recipe", "reference_train", "reference_weights", "reference_keep", "nonmembers")


def evaluate(target: Any = None, dataset: Optional[str] = None, members: Any = None, *, eps: Any = None, attack_steps: int = 20,
             step_size: Any = None, restarts: int = 1, random_start: bool = True, autoattack: bool = False, bound: str = "crown",
             max_examples: Optional[int] = None, seed: int = 0, device: str = "auto", batch_size: int = 500,
             out: Optional[str | Path] = None, **external: Any) -> dict[str, Any]:
    """Clean, PGD (and AutoAttack, verified) accuracy of a run on its members and the test split, or
    of a model trained elsewhere (an nn.Module, or ``arch=``/``weights=``: see experiments.external.external_target)
    on its members and non-members. ``eps`` defaults to the (stated) training eps; ``bound="none"``
    skips verification."""
    from robustmia.experiments.targets import resolve_target
    from robustmia.robust.bound_names import check_bound
    from robustmia.robust.perturbation import Perturbation
    from robustmia.validation import check_device

    check_bound(bound)
    check_device(device)
    resolved = resolve_target(target, dataset, members, out=out, external=external)
    resolved.check_idle()
    for line in resolved.warnings():
        warn(line)
    perturbation = Perturbation.for_run(resolved.eps, eps, steps=attack_steps, step_size=step_size, restarts=restarts,
                                        random_start=random_start, seed=seed, autoattack=autoattack)
    from robustmia.models.inference import resolve_device

    scores = resolved.evaluate(perturbation, bound=None if bound == "none" else bound, device=resolve_device(device),
                               batch_size=batch_size, max_examples=max_examples)
    return {**resolved.describe(), **scores}


def audit(target: Any = None, dataset: Optional[str] = None, members: Any = None, *, device: str = "auto",
          progress: Optional[Progress] | str = "auto", out: Optional[str | Path] = None, **options: Any):
    """Membership-inference attacks on ``target``: a run folder robustmia trained, or a model trained
    elsewhere (an nn.Module, or ``arch=``/``weights=`` files) with the ``dataset`` its examples come
    from and its ``members`` (a membership file, or train-split indices; see experiments.external).
    Other options: those of ``robustmia attack`` (e.g. ``attacks="confidence,lira"``,
    ``references=16``, ``eval_size=600``) and, for external targets, :data:`EXTERNAL_KEYS`. Returns an
    AuditResult, also saved in the audit folder (a run's ``audit/``, or ``out/audit/``)."""
    from robustmia.experiments.targets import resolve_target
    from robustmia.validation import check_device

    check_device(device)
    external = {k: options.pop(k) for k in EXTERNAL_KEYS if k in options}
    _reference_train(external)
    from robustmia.experiments.settings import AuditSettings
    from robustmia.validation import validate

    validate(AuditSettings, options, "audit settings")  # the settings as given are refused first, whatever the target
    resolved = resolve_target(target, dataset, members, out=out, external=external)
    resolved.check_idle()
    settings = _audit_settings(resolved, options)
    from robustmia.experiments.audit import Audit
    from robustmia.experiments.targets import audit_target
    from robustmia.models.inference import resolve_device

    drawn = audit_target(resolved, settings, resolve_device(device))
    with _shown(progress) as shown:
        return Audit(drawn, settings, device=device, progress=shown).run_attacks()


def _reference_train(external: dict) -> None:
    """``reference_train`` as a dict (the CLI gives KEY=VALUE pairs), and only with the recipe it sets."""
    if isinstance(external.get("reference_train"), (list, tuple)):
        from robustmia.validation import key_values

        external["reference_train"] = key_values(list(external["reference_train"]), "--reference-train")
    if external.get("reference_train") and external.get("reference_recipe") is None:
        raise UserError("--reference-train sets the reference recipe's settings: name the recipe with --reference-recipe, or drop "
                        "--reference-train (a run's references share its own recipe)")


def _audit_settings(target: Any, options: dict) -> Any:
    """The audit's settings from ``options``, the defaults that depend on the target filled in (its kind's attacks);
    a reference recipe that no attack needs is dropped with a warning."""
    from robustmia.experiments.settings import AuditSettings
    from robustmia.validation import validate

    options = {**target.setting_defaults(), **options}
    defaults = target.default_attacks()
    if "attacks" not in options and defaults is not None:
        options["attacks"] = defaults
    settings = validate(AuditSettings, options, "audit settings")
    if target.reference_recipe is not None and not _needs_references(settings):
        warn(f"--reference-recipe {target.reference_recipe} is ignored: none of the attacks "
             f"({', '.join(settings.attacks)}) needs reference models")
        target.drop_reference_recipe()
    return settings


def dp_audit(target: str | Path, *, attacks: Any = "confidence,loss", k: Any = None, confidence: float = 0.95, delta: Optional[float] = None,
             device: str = "auto", progress: Optional[Progress] | str = "auto", **options: Any):
    """The one-run DP audit (Steinke, Nasr & Jagielski 2023) of a run trained with canaries
    (``--set canaries=...``; data.canaries): every attack scores the canaries, and each record's ``dp_audit``
    holds the valid epsilon lower bound. ``k`` = (k_pos, k_neg) fixed in advance (or ``"K_POS,K_NEG"``), else a
    grid with the confidence split across it. Other options: those of :func:`audit`. Returns an AuditResult."""
    from robustmia.experiments.dp_audit import OneRunSettings
    from robustmia.experiments.settings import AuditSettings
    from robustmia.validation import check_device, validate

    check_device(device)
    if isinstance(k, str):
        try:
            k = tuple(int(v) for v in k.split(","))
        except ValueError:
            raise UserError(f"--k {k!r}: write K_POS,K_NEG, e.g. --k 50,50") from None
    one_run = validate(OneRunSettings, {"k": k, "confidence": confidence, "delta": delta}, "one-run audit settings")
    settings = validate(AuditSettings, {"attacks": attacks, **options}, "audit settings")
    from robustmia.training.run import Run

    run = Run.open(target)
    run.check_idle()
    from robustmia.experiments.dp_audit import dp_audit as run_dp_audit

    with _shown(progress) as shown:
        return run_dp_audit(run, settings, one_run, device=device, progress=shown)


def _needs_references(settings: Any) -> bool:
    from robustmia.privacy.attacks import needs_references

    return any(needs_references(a, settings.threshold) for a in settings.attacks)


def audit_predictions(file: str | Path, *, bootstrap: int = 1000, seed: int = 0):
    """The threshold attacks (oracle thresholds) on a file of a black-box model's predictions
    (see robustmia.privacy.predictions); an AuditResult. ``bootstrap`` and ``seed`` are bounded as the audit's own."""
    from robustmia.experiments.settings import AuditSettings
    from robustmia.privacy.predictions import load_predictions
    from robustmia.validation import validate

    validate(AuditSettings, {"bootstrap": bootstrap, "seed": seed}, "audit-scores")

    kind, scores, labels, member = load_predictions(file)  # a bad file is refused before anything heavy is imported
    from robustmia.privacy.attacks import ATTACKS, AttackInputs
    from robustmia.privacy.results import FIGURE_SIGNALS, AuditResult, run_attacks
    from robustmia.privacy.signals import signals_from_logits, signals_from_probs

    signals = signals_from_probs(scores, labels) if kind == "probs" else signals_from_logits(scores, labels)
    inputs = AttackInputs(target=signals, labels=labels)
    names = [a.name for a in ATTACKS.values() if a.threshold and not a.adversarial and not a.probes]  # what outputs alone give
    attacks = run_attacks(inputs, names, member, bootstrap=bootstrap, seed=seed, permutations=1000)
    return AuditResult(attacks, member, {k: inputs.target[k] for k in FIGURE_SIGNALS}, {"predictions": str(file)})


def run_study(spec: str | Path, out: str | Path, *, resume: bool = False, data_dir: Optional[str] = None, device: str = "auto",
              progress: Optional[Progress] | str = "auto", backend: str = "local", address: Optional[str] = None,
              workers: Optional[int] = None, threads: Optional[int] = None, allow_code: Optional[Sequence[str]] = None,
              tiny: bool = False) -> dict[str, Any]:
    """Run a study (a spec file, or the name of a preset: see ``robustmia reproduce --list``) into
    ``out`` and write its report; return the report's summary. ``allow_code``: modules whose entry
    points (an external target's ``arch: package.module:factory``) the spec may run. ``tiny``: run the
    spec's tiny twin instead (experiments.twins: every target, method and attack, at the smallest sizes)."""
    from robustmia.experiments.spec import load_spec
    from robustmia.validation import check_device

    if out is None:
        raise UserError("name the study folder with --out (e.g. --out runs/mine), or pass --plan to see the study's cost only")
    check_device(device)
    path = _spec_path(spec, tiny, data_dir, allow_code)
    study, configs = load_spec(path, data_dir, list(allow_code or []))  # validated in full before anything heavy is imported
    if study.needs_gpu and not tiny and device == "auto":
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"{study.name} needs a CUDA GPU (its models and audits are too large for a CPU); run it on a GPU machine, "
                            "pass --device cpu to run it here anyway, or --tiny for its tiny twin")
    from robustmia.io import check_out

    check_out(out)
    from robustmia.experiments.backends import make_backend
    from robustmia.experiments.runner import check_targets, run_study as run

    check_targets(study, configs, Path(out), device)

    with _shown(progress) as shown:
        tasks = make_backend(backend, address=address, workers=workers, threads=threads, device=device, progress=shown)
        try:
            run(study, configs, path, Path(out), resume=resume, device=device, progress=shown, backend=tasks)
        finally:
            tasks.close()
    from robustmia.experiments.runner import record_phase

    with record_phase(Path(out), "report"):
        summary = report(out)
    return summary


def plan_study(spec: str | Path, *, data_dir: Optional[str] = None, tiny: bool = False, throughput: Optional[float] = None,
               device: str = "auto", allow_code: Optional[Sequence[str]] = None):
    """What a study (a spec file or a preset's name) will cost before anything trains: each target's FLOPs by part
    (training, reference models, evaluation, audit, tracking) and the time at ``throughput`` TFLOP/s (default: the
    stated throughput of one GPU where the study is meant for one or ``device`` is a GPU, else of 2 CPU cores); an
    experiments.plan.Plan. A dataset that is not there is counted at its standard sizes."""
    from robustmia.experiments.plan import plan_study as plan
    from robustmia.experiments.spec import load_spec
    from robustmia.validation import check_device

    check_device(device)
    if throughput is not None and not (0 < throughput < 1e6):
        raise UserError(f"--throughput {throughput}: give the device's TFLOP/s, a positive number (e.g. 170 for one H200)")
    path = _spec_path(spec, tiny, data_dir, allow_code, check_data=False)
    study, configs = load_spec(path, data_dir, list(allow_code or []), check_data=False)
    gpu = device.startswith("cuda") or (device == "auto" and study.needs_gpu and not tiny)
    return plan(study, configs, throughput, gpu=gpu)


def _spec_path(spec: str | Path, tiny: bool, data_dir: Optional[str] = None, allow_code: Optional[Sequence[str]] = None,
               check_data: bool = True) -> Path:
    """The spec file of ``spec`` (a file, or a preset's name), or of its tiny twin: the spec itself is validated in full
    first (every mistake one line naming it), and only then shrunk, so that a twin never meets a malformed spec."""
    from robustmia.experiments.presets import preset_path

    path = Path(spec) if Path(spec).suffix in (".yaml", ".yml") or Path(spec).is_file() else preset_path(str(spec))
    if tiny:
        from robustmia.experiments.spec import load_spec
        from robustmia.experiments.twins import twin_file

        load_spec(path, data_dir, list(allow_code or []), check_data=check_data)
        path = twin_file(path)
    return path


def report(study_dir: str | Path) -> dict[str, Any]:
    """Rebuild a study's report (tables, figures, findings, report.html) from its folder alone."""
    from robustmia.reporting.build import write_report

    return write_report(Path(study_dir))
