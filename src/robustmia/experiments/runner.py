"""Running a study: train what is missing, evaluate, audit, collect the results.

```
OUT/
  spec.yaml           the spec as given
  study.log           what was done, when
  runs/<hash>/        one run folder per distinct training config (hash of the config), shared
                      by every target and every study with the same recipe in this OUT
  results.json        per target: config, evaluation, attack records, training log
  report/             tables, figures and report.html (robustmia.report)
```

A finished run is never trained again; an interrupted one continues from its last
checkpoint with ``resume=True``; evaluations and audits are cached beside their runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from robustmia.data.datasets import DATASETS
from robustmia.errors import UserError
from robustmia.experiments.audit import Audit
from robustmia.experiments.settings import AuditSettings
from robustmia.privacy.attacks.registry import needs_adversarial
from robustmia.experiments.spec import StudySpec
from robustmia.io import write_json
from robustmia.privacy.metrics import evaluate_scores
from robustmia.progress import Progress
from robustmia.robust.evaluate import EvalAttack, evaluate_model
from robustmia.train.config import DEFAULT_EPOCHS, TrainConfig
from robustmia.train.loop import train
from robustmia.train.run import LOG_FILE, Run, read_config_dict

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
        eps = config.eps or None
        attack = EvalAttack(eps=eps, steps=10) if eps else EvalAttack()
        scores = evaluate_model(model, mem, non, attack, num_classes=num_classes, bound=None)
        from robustmia.privacy.signals import model_signals

        conf = np.concatenate([model_signals(model, d)["confidence"] for d in (mem, non)])
        member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
        mi = evaluate_scores(conf, member, n_bootstrap=0).inference_accuracy
        return {"track": {"train_accuracy": scores["train_accuracy"], "test_accuracy": scores["test_accuracy"],
                          "adv_train_accuracy": scores.get("adv_train_accuracy"), "adv_test_accuracy": scores.get("adv_test_accuracy"),
                          "inference_accuracy": mi, "n": n}}

    return track


def _audit_settings(spec: StudySpec, config: TrainConfig) -> AuditSettings:
    """The spec's audit for one target: attacks on PGD inputs only where the target has an eps,
    and those inputs made as the evaluation makes them."""
    a = spec.audit
    attacks = [x for x in a.attacks if not needs_adversarial(x) or config.eps > 0 or a.eps]
    update = {"attacks": attacks}
    if "attack_steps" not in a.model_fields_set:
        update["attack_steps"] = spec.evaluation.attack_steps
    if "step_size" not in a.model_fields_set:
        update["step_size"] = spec.evaluation.step_size
    return a.model_copy(update=update)


def run_study(
    spec: StudySpec,
    configs: dict[str, TrainConfig],
    spec_path: Path,
    out: Path,
    *,
    resume: bool = False,
    device: str = "auto",
    progress: Optional[Progress] = None,
) -> list[dict[str, Any]]:
    out = Path(out)
    stored_spec = out / "spec.yaml"
    if out.exists() and any(out.iterdir()):
        if not stored_spec.is_file():
            raise UserError(f"{out} exists and holds no study; choose another --out")
        if stored_spec.read_text() != Path(spec_path).read_text() and not resume:
            raise UserError(f"{out} holds a study of another spec; choose another --out, or pass --resume to continue with this spec")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec_path, stored_spec)
    log = StudyLog(out / "study.log")
    log(f"study {spec.name}: {len(configs)} targets")
    results = []
    for target in spec.targets:
        config = configs[target.name]
        run_dir = out / "runs" / run_hash(config)
        stored = read_config_dict(run_dir)
        done = _finished(run_dir)
        if stored is not None and not done and not resume:
            raise UserError(f"target {target.name} was interrupted in {run_dir}; continue the study with --resume")
        if not done:
            log(f"train {target.name} ({config.method}, eps {config.eps:g}) into {run_dir}")
            hook = _tracker(config, spec.track_every, DATASETS[config.dataset].num_classes) if spec.track_every else None
            train(config, run_dir, resume=True, device=device, progress=progress, epoch_hook=hook)
        else:
            log(f"reuse {target.name}: {run_dir} is finished")
        run = Run.open(run_dir)
        evaluation = _evaluate(spec, run, device, log)
        audit = Audit(run, _audit_settings(spec, config), device=device, progress=progress)
        records = audit.run_attacks()
        signals = audit.target_inputs.target
        log(f"audited {target.name}: {len(records)} attack records")
        results.append({
            "name": target.name, "tables": target.tables, "run": str(run_dir.relative_to(out)), "config": config.model_dump(mode="json"),
            "evaluation": evaluation, "attacks": records, "log": _read_log(run_dir),
            "_signals": {"loss": signals["loss"], "confidence": signals["confidence"], "member": audit.member},
            "_audit": audit,
        })
    write_json(out / "results.json", [{k: v for k, v in r.items() if not k.startswith("_")} for r in results])
    log("results written")
    return results


def _finished(run_dir: Path) -> bool:
    meta = run_dir / "checkpoint" / "meta.json"
    if not meta.is_file():
        return False
    m = json.loads(meta.read_text())
    config = TrainConfig.model_validate(m["config"])
    if config.iterations is not None:
        return m["step"] >= config.iterations
    return m["epoch"] >= (config.epochs or DEFAULT_EPOCHS)


def _evaluate(spec: StudySpec, run: Run, device: str, log: StudyLog) -> dict[str, Any]:
    e = spec.evaluation
    attack = EvalAttack(eps=run.config.eps or None, steps=e.attack_steps, step_size=e.step_size, restarts=e.restarts)
    key = hashlib.sha256(json.dumps([attack.describe(), e.bound, e.max_examples], sort_keys=True).encode()).hexdigest()[:12]
    path = run.path / f"evaluation-{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    model = run.load_model(device)
    members, test = run.data()
    result = evaluate_model(model, members, test, attack, num_classes=run.info.num_classes, max_examples=e.max_examples,
                            bound=None if e.bound == "none" else e.bound)
    write_json(path, result)
    log(f"evaluated {run.path.name}")
    return result


def _read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
