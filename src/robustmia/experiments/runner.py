"""Running a study: train what is missing, evaluate, audit, collect the results.

```
OUT/
  spec.yaml           the spec as given
  study.log           what was done, when
  runs/<hash>/        one run folder per distinct training config (hash of the config), shared
                      by every target and every study with the same recipe in this OUT;
                      trained in runs/<hash>.partial/ and renamed when finished
  results.json        per target: config, evaluation, attack records, training log
  report/             tables, figures and report.html (robustmia.reporting)
```

A finished run is never trained again; an interrupted one continues from its last
checkpoint with ``resume=True``; evaluations and audits are cached beside their runs.
The independent tasks (targets; evaluations and groups of reference models; audits) go to a
backend (``experiments.backends``): this machine, or a Ray cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from robustmia.data.catalog import dataset_info
from robustmia.errors import UserError
from robustmia.experiments.audit import Audit, reference_groups
from robustmia.experiments.backends import LocalBackend
from robustmia.experiments.settings import AuditSettings
from robustmia.experiments.targets import RunTarget, Target
from robustmia.models.inference import device_name, resolve_device
from robustmia.privacy.attacks import ATTACKS, needs_adversarial
from robustmia.experiments.spec import EvaluationSpec, StudySpec
from robustmia.io import read_jsonl, write_json
from robustmia.locks import OWNER_FILE, folder_lock
from robustmia.experiments.layout import AUDITS_FOLDER, EXTERNAL_FOLDER, LOG_FILE as STUDY_LOG, PHASES_FILE, RESULTS_FILE, RUNS_FOLDER, SPEC_FILE
from robustmia.privacy.metrics import evaluate_scores
from robustmia.privacy.results import AuditResult
from robustmia.progress import Progress
from robustmia.robust.evaluate import Perturbation, evaluate_model
from robustmia.training.config import TrainConfig
from robustmia.training.loop import train
from robustmia.training.run import LOG_FILE, Run, run_finished

TRACK_EXAMPLES = 300  # per side, for the over-training curves


def run_hash(config: TrainConfig) -> str:
    blob = json.dumps(config.identity(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


class StudyLog:
    def __init__(self, path: Path):
        self.path = path

    def __call__(self, message: str) -> None:
        with open(self.path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


def _tracker(config: TrainConfig, every: int, num_classes: int) -> Callable[[torch.nn.Module, int, Any, Any], dict[str, Any]]:
    """Figures 3 and 4: every ``every`` epochs, accuracies and membership inference accuracy."""

    def track(model, epoch, members, test) -> dict[str, Any]:
        if epoch % every:
            return {}
        n = min(TRACK_EXAMPLES, len(members), len(test))
        mem, non = members.subset(range(n)), test.subset(range(n))
        perturbation = Perturbation.for_run(config.eps, steps=10)
        scores = evaluate_model(model, mem, non, perturbation, num_classes=num_classes, bound=None)
        from robustmia.privacy.signals import model_signals

        conf = np.concatenate([model_signals(model, d)["confidence"] for d in (mem, non)])
        member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
        mi = evaluate_scores(conf, member, n_bootstrap=0).inference_accuracy
        return {"track": {"train_accuracy": scores["train_accuracy"], "test_accuracy": scores["test_accuracy"],
                          "adv_train_accuracy": scores.get("adv_train_accuracy"), "adv_test_accuracy": scores.get("adv_test_accuracy"),
                          "inference_accuracy": mi, "n": n}}

    return track


def _audit_settings(spec: StudySpec, target: Any, resolved: Target, base: Optional[AuditSettings] = None) -> AuditSettings:
    """The spec's audit for one target (its own ``audit`` block over the study's): attacks on PGD
    inputs only where the target has an eps, and those inputs made as the evaluation makes them;
    attacks on certified bounds only where it is certifiable; without a way to get reference models
    (an external target without a reference recipe) only the attacks that need none, oracle thresholds;
    what its kind fixes (experiments.targets.Target.setting_defaults) over it. ``base``: other settings to start
    from (a one-run DP audit's)."""
    a = base or spec.audit_for(target)
    eps, references, certifiable = resolved.eps, resolved.can_train_references(), resolved.certifiable()
    attacks = [x for x in a.attacks if (not needs_adversarial(x) or eps > 0 or a.eps) and (references or not ATTACKS[x].references)
               and (certifiable or not ATTACKS[x].certified)]
    update: dict[str, Any] = {"attacks": attacks}
    if not references:
        update["threshold"] = "oracle"
    if "attack_steps" not in a.model_fields_set:
        update["attack_steps"] = spec.evaluation.attack_steps
    if "step_size" not in a.model_fields_set:
        update["step_size"] = spec.evaluation.step_size
    return a.model_copy(update={**update, **resolved.setting_defaults()})


def _open_study(spec_path: Path, out: Path, resume: bool) -> None:
    """Check ``out`` can take this study (empty, or a study of the same spec, or --resume) and copy the spec in."""
    stored_spec = out / SPEC_FILE
    if out.exists() and any(p.name != OWNER_FILE for p in out.iterdir()):
        if not stored_spec.is_file():
            raise UserError(f"{out} exists and holds no study; choose another --out")
        if stored_spec.read_text() != Path(spec_path).read_text() and not resume:
            raise UserError(f"{out} holds a study of another spec; choose another --out, or pass --resume to continue with this spec")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec_path, stored_spec)


def _train_targets(spec: StudySpec, targets: list, backend: Any, log: StudyLog, resume: bool, device: str) -> None:
    """Phase 1: every target that is not finished trains (a run shared by two targets once)."""
    training: dict[Path, Any] = {}
    for target, resolved in targets:
        if resolved.training() is None:  # nothing to train: a model trained elsewhere
            continue
        config, run_dir = resolved.training(), resolved.folder
        if run_finished(run_dir):
            log(f"reuse {target.name}: {run_dir} is finished")
            continue
        if run_dir.exists():  # only a finished run is ever renamed to its final name
            raise UserError(f"target {target.name}: {run_dir} holds an unfinished run of an older robustmia; delete it to retrain it")
        if _staging(run_dir).exists() and not resume:
            raise UserError(f"target {target.name} was interrupted in {_staging(run_dir)}; continue the study with --resume")
        log(f"train {target.name} ({config.method}, eps {config.eps:g}) into {run_dir}")
        training.setdefault(run_dir, (train_target, (config, str(run_dir), spec.track_every, device, target.name)))
    started, tasks = time.monotonic(), list(training.values())
    backend.run(tasks, done=lambda i: log(f"trained {tasks[i][1][4]} ({i + 1} of {len(tasks)} to train; "
                                          f"{time.monotonic() - started:.0f} s since the first started)"))


def _evaluate_and_prepare(spec: StudySpec, targets: list, backend: Any, device: str, log: Optional["StudyLog"] = None) -> dict[Path, dict[str, Any]]:
    """Phase 2: evaluate every target and train every group of its reference models; return the evaluations."""
    tasks: dict[tuple, Any] = {}
    for target, resolved in targets:
        run_dir = resolved.folder
        tasks.setdefault(("evaluate", run_dir), (evaluate_target, (spec.evaluation, resolved, device)))
        settings = _audit_settings(spec, target, resolved)
        if not reference_groups(settings):
            continue
        audit = Audit(resolved, settings, device=device)
        for group in audit.task_groups():
            # one task per group of reference models: two targets of one run whose audits differ only in their attacks
            # share the models (the second's other signals are made in phase 3)
            key = ("references", run_dir, str(audit.references_folder), tuple(group))
            tasks.setdefault(key, (prepare_references, (resolved, settings, group, device)))
    keys = list(tasks)

    def finished(i: int) -> None:
        kind, run_dir = keys[i][:2]
        what = "evaluated" if kind == "evaluate" else f"reference models {keys[i][3][0]}-{keys[i][3][-1]} ready for"
        log(f"{what} {names[run_dir]} ({i + 1} of {len(keys)} tasks)")

    names = {resolved.folder: target.name for target, resolved in reversed(targets)}
    done = dict(zip(tasks, backend.run(list(tasks.values()), done=finished if log is not None else None)))
    return {key[1]: value for key, value in done.items() if key[0] == "evaluate"}


def run_study(
    spec: StudySpec,
    configs: dict[str, TrainConfig],
    spec_path: Path,
    out: Path,
    *,
    resume: bool = False,
    device: str = "auto",
    progress: Optional[Progress] = None,
    backend: Optional[Any] = None,
) -> list[dict[str, Any]]:
    """Run the study in three phases: train the targets; evaluate them and train their reference
    models; audit them (an audit only reads what phase 2 cached). The tasks of a phase are independent,
    and ``backend`` (default: this process, one task after another) runs them. Each target's audit
    is saved in ``OUT/audits/<target>/`` and ``OUT/results.json`` lists the targets: the report
    (robustmia.reporting) is built from these files alone."""
    out = Path(out)
    backend = backend or LocalBackend(progress=progress)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file, not a study folder; choose another --out")
    with folder_lock(out):  # one process runs a study folder; a second is refused in one line
        _open_study(spec_path, out, resume)
        return _run(spec, configs, out, resume, device, progress, backend)


def _run(spec: StudySpec, configs: dict[str, TrainConfig], out: Path, resume: bool, device: str, progress: Optional[Progress],
         backend: Any) -> list[dict[str, Any]]:
    log = StudyLog(out / STUDY_LOG)
    where = device_name(resolve_device(device))
    log(f"study {spec.name}: {len(spec.targets)} targets ({', '.join(t.name for t in spec.targets)}), {backend.name} backend, on {where}")
    targets = [(t, study_target(t, configs, out)) for t in spec.targets]
    phases = Phases(out / PHASES_FILE, where, log)
    with phases("training"):
        _train_targets(spec, targets, backend, log, resume, device)
    with phases("evaluation and reference models"):
        evaluations = _evaluate_and_prepare(spec, targets, backend, device, log)
    log(f"evaluated {len(targets)} targets; their reference models are ready")
    with phases("audits"):
        folders = _audit_targets(spec, targets, out, backend, device, log)
    results = []
    with phases("one-run DP audits and results"):
        for target, resolved in targets:
            results.append(_result(spec, target, resolved, out, folders[target.name], evaluations[resolved.folder], device, progress, log))
        write_json(out / RESULTS_FILE, results)
    log("results written")
    return results


def _result(spec: StudySpec, target: Any, resolved: Target, out: Path, folder: Path, evaluation: dict[str, Any], device: str,
            progress: Optional[Progress], log: "StudyLog") -> dict[str, Any]:
    """One target's entry of results.json (its one-run DP audit made on the way, where it has one)."""
    audit = AuditResult.load(folder, "run the study again with --resume")
    one_run = _dp_audit(spec, target, resolved, device, progress)
    if one_run is not None:
        log(f"one-run DP audit of {target.name}: {len(one_run)} records")
    log_records = _read_log(resolved.folder)
    return {
        "name": target.name, "tables": target.tables, "run": str(resolved.folder.relative_to(out)), "config": resolved.config_row(),
        "evaluation": evaluation, "attacks": audit.records(), "audit": str(folder.relative_to(out)),
        "log": log_records, **({k: audit.about[k] for k in ("external", "warnings") if k in audit.about}),
        **resolved.training_facts(log_records), **({"dp_audit": one_run} if one_run is not None else {}),
    }


def record_phase(out: Path, name: str):
    """Time phase ``name`` of the study in ``out`` into its phases.json, beside the phases its run recorded."""
    from robustmia.io import read_json

    phases = Phases(out / PHASES_FILE, "", StudyLog(out / STUDY_LOG))
    try:
        found = read_json(out / PHASES_FILE, "")
        if isinstance(found, dict) and isinstance(found.get("phases"), list):
            phases.record = found
    except UserError:
        pass
    return phases(name)


class Phases:
    """Each phase of a study timed: its seconds into the study log and ``phases.json`` (with the device's name),
    rewritten as each phase ends, so that the report can say where the time went."""

    def __init__(self, path: Path, device: str, log: Optional["StudyLog"] = None):
        self.path, self.log = path, log
        self.record: dict[str, Any] = {"device": device, "phases": []}  # [{"name": ..., "seconds": ...}] in the order they ran

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.monotonic()
        yield
        seconds = round(time.monotonic() - started, 1)
        self.record["phases"] = [p for p in self.record["phases"] if p.get("name") != name] + [{"name": name, "seconds": seconds}]
        if self.log is not None:
            self.log(f"{name}: {seconds:g} s" + (f" on {self.record['device']}" if self.record.get("device") else ""))
        write_json(self.path, self.record)


def _audit_targets(spec: StudySpec, targets: list, out: Path, backend: Any, device: str, log: StudyLog) -> dict[str, Path]:
    """Phase 3: audit every target (the attacks only read what phase 2 cached); return each audit's folder. The
    targets of one run are one task, audited one after another: their audits write the run's audit folders."""
    folders = {target.name: out / AUDITS_FOLDER / target.name for target, _ in targets}
    by_run: dict[Path, list] = {}
    for target, resolved in targets:
        by_run.setdefault(resolved.folder, []).append((target.name, (resolved, _audit_settings(spec, target, resolved), device,
                                                                     str(folders[target.name]))))
    groups = list(by_run.values())
    audited = []

    def finished(i: int) -> None:
        names = [name for name, _ in groups[i]]
        audited.extend(names)
        log(f"audited {', '.join(names)} ({len(audited)} of {len(targets)} targets)")

    counts = backend.run([(audit_targets, ([job for _, job in group],)) for group in groups], done=finished)
    log(f"audited {len(targets)} targets: {sum(counts)} attack records")
    return folders


def _dp_audit(spec: StudySpec, target: Any, resolved: Target, device: str, progress: Optional[Progress]) -> Optional[list[dict[str, Any]]]:
    """A target's one-run DP audit (experiments.dp_audit), as the records the report reads: each attack's bound."""
    if target.dp_audit is None:
        return None
    from robustmia.experiments.dp_audit import dp_audit

    settings = _audit_settings(spec, target, resolved, base=spec.dp_audit_for(target))
    result = dp_audit(Run.open(resolved.folder), settings, target.dp_audit.one_run(), device=device, progress=progress)
    return [{"attack": a.attack, "threshold_selection": a.threshold_selection, **a.details["dp_audit"]} for a in result.attacks]


def study_target(target: Any, configs: dict[str, TrainConfig], out: Path) -> Target:
    """A spec's target resolved (experiments.targets): a model trained elsewhere, kept in ``OUT/external/<name>``,
    or a run this study trains in ``OUT/runs/<hash of its config>``."""
    if target.external is not None:
        from robustmia.experiments.external import ExternalModel

        return ExternalModel.of(target.external, out / EXTERNAL_FOLDER / target.name)
    return RunTarget(out / RUNS_FOLDER / run_hash(configs[target.name]), config=configs[target.name])


def check_targets(spec: StudySpec, configs: dict[str, TrainConfig], out: Path, device: str) -> None:
    """Build the audit of every target that needs no training as the study will (its files, model, weights, membership
    indices, normalisation, population, reference models), so that a mistake in one is refused in one line before the
    study writes anything."""
    for target in spec.targets:
        resolved = study_target(target, configs, out)
        if resolved.training() is None:
            try:
                Audit(resolved, _audit_settings(spec, target, resolved), device=device)
            except UserError as e:
                raise UserError(f"target {target.name}: {e}") from None


# --- tasks: top-level functions of plain arguments, so that a Ray worker can run them ------------


def _staging(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + ".partial")


def train_target(config: TrainConfig, run_dir: str, track_every: Optional[int], device: str, name: Optional[str] = None,
                 progress: Optional[Progress] = None) -> None:
    """Train one target in ``RUN.partial/`` and rename it to ``RUN/`` when finished, so a run
    folder is there whole or not at all; an interrupted (or retried) task resumes the staging folder."""
    final = Path(run_dir)
    if run_finished(final):
        return
    staging = _staging(final)
    hook = _tracker(config, track_every, dataset_info(config.dataset, config.data_dir).num_classes) if track_every else None
    train(config, staging, resume=True, device=device, progress=progress, epoch_hook=hook, name=name)
    staging.rename(final)


def evaluate_target(e: EvaluationSpec, target: Target, device: str, progress: Optional[Progress] = None) -> dict[str, Any]:
    """Clean, PGD and verified accuracy of one target, cached in its folder."""
    perturbation = Perturbation.for_run(target.eps, steps=e.attack_steps, step_size=e.step_size, restarts=e.restarts)
    key = hashlib.sha256(json.dumps([perturbation.describe(), e.bound, e.max_examples, *target.evaluation_identity()],
                                    sort_keys=True).encode()).hexdigest()[:12]
    path = target.folder / f"evaluation-{key}.json"
    cached = _cached_json(path)
    if cached is not None:
        return cached
    result = target.evaluate(perturbation, bound=None if e.bound == "none" else e.bound, device=resolve_device(device),
                             max_examples=e.max_examples)
    write_json(path, result)
    return result


def prepare_references(target: Target, settings: AuditSettings, group: list[int], device: str,
                       progress: Optional[Progress] = None) -> None:
    """Train one group of a target's reference models and cache their signals."""
    Audit(target, settings, device=device).prepare_references(group)


def audit_targets(jobs: list[tuple[Target, AuditSettings, str, str]], progress: Optional[Progress] = None) -> int:
    """For each (target, settings, device, folder): run a target's attacks and save its audit in ``folder``, one after
    another; return the number of attack records."""
    records = 0
    for target, settings, device, folder in jobs:
        audit = Audit(target, settings, device=device, progress=progress).run_attacks()
        audit.save(folder)
        records += len(audit.attacks)
    return records


def _cached_json(path: Path) -> Optional[dict[str, Any]]:
    """A cached result, or None when it is missing or damaged (then it is computed again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / LOG_FILE
    records = read_jsonl(path, f"delete {run_dir} to train it again")
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]  # runs of earlier versions logged time
