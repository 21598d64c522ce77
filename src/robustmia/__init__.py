"""robustmia: how much does a robust model leak about its training data?

The public API (loaded on first use, so that ``import robustmia`` stays cheap):

- ``train(config, out)``, ``evaluate(run_dir)``, ``audit(run_dir, attacks=...)``,
  ``run_study(spec_or_preset, out)``, ``plan_study(spec_or_preset)``, ``report(study_dir)`` (see robustmia.api);
- the result types ``AuditResult``, ``AttackResult``, ``MembershipMetrics``; ``TrainConfig``,
  ``AuditSettings``, ``Perturbation``; ``register_attack`` to add a membership attack.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "train": "robustmia.api",
    "evaluate": "robustmia.api",
    "audit": "robustmia.api",
    "audit_predictions": "robustmia.api",
    "run_study": "robustmia.api",
    "plan_study": "robustmia.api",
    "report": "robustmia.api",
    "AuditResult": "robustmia.privacy.results",
    "AttackResult": "robustmia.privacy.results",
    "run_attacks": "robustmia.privacy.results",
    "MembershipMetrics": "robustmia.privacy.metrics",
    "register_attack": "robustmia.privacy.attacks",
    "AttackInputs": "robustmia.privacy.attacks",
    "AttackScores": "robustmia.privacy.attacks",
    "TrainConfig": "robustmia.training.config",
    "AuditSettings": "robustmia.experiments.settings",
    "Perturbation": "robustmia.robust.perturbation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'robustmia' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
