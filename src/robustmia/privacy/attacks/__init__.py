"""Membership-inference attacks: each maps signals to one score per example (higher = member).

Attacks are pure functions of arrays: they never train or query a model and never see
the true membership of the examples they score. Reference and shadow models are trained
elsewhere (robustmia.experiments.audit) and reach the attacks as arrays of signals. Each
attack registers itself (``registry.register_attack``); importing this package registers
the built-in ones and the modules named in ``$ROBUSTMIA_PLUGINS``.
"""

from robustmia.privacy.attacks.base import AttackInputs, AttackOptions, AttackScores
from robustmia.privacy.attacks.registry import (
    ATTACKS, AttackSpec, attack_spec, default_attacks, needs_adversarial, needs_references, register_attack, run_attack,
)
from robustmia.privacy.attacks import threshold, lira, rmia, shadow, label_only, white_box, quantile  # noqa: E402,F401  (they register themselves)
from robustmia.entry_points import load_plugins

load_plugins()

__all__ = ["ATTACKS", "AttackInputs", "AttackOptions", "AttackScores", "AttackSpec", "attack_spec", "default_attacks",
           "needs_adversarial", "needs_references", "register_attack", "run_attack"]
