"""Membership-inference attacks: each maps signals to one score per example (higher = member).

Attacks are pure functions of arrays: they never train or query a model and never see
the true membership of the examples they score. Reference and shadow models are trained
elsewhere (robustmia.experiments.audit) and reach the attacks as arrays of signals.
"""

from robustmia.privacy.attacks.base import AttackInputs, AttackResult
from robustmia.privacy.attacks.registry import ATTACKS, needs_references, run_attack

__all__ = ["ATTACKS", "AttackInputs", "AttackResult", "needs_references", "run_attack"]
