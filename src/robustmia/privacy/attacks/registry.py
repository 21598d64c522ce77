"""Attack names, as the CLI and experiment specs spell them, and how to run each."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from robustmia.privacy.attacks.base import AttackInputs, AttackResult
from robustmia.privacy.attack_names import ATTACKS as NAMES
from robustmia.privacy.attacks.lira import lira
from robustmia.privacy.attacks.rmia import rmia
from robustmia.privacy.attacks.shadow import shokri
from robustmia.privacy.attacks.threshold import THRESHOLD_SIGNALS, threshold_attack

# threshold attacks: name -> (signal, orientation); adversarial variants read the adv_ signals
THRESHOLD_ATTACKS: dict[str, tuple[str, float]] = {
    **THRESHOLD_SIGNALS,
    **{f"adv-{name}": (f"adv_{signal}", sign) for name, (signal, sign) in THRESHOLD_SIGNALS.items()},
    "loss-increase": ("loss_increase", -1.0),  # robust training makes members' loss rise less
}

REFERENCE_ATTACKS: dict[str, Callable[[AttackInputs], AttackResult]] = {
    "lira": lambda i: lira(i, online=True),
    "lira-offline": lambda i: lira(i, online=False),
    "lira-fixed": lambda i: lira(i, online=True, fixed_variance=True),
    "lira-offline-fixed": lambda i: lira(i, online=False, fixed_variance=True),
    "rmia": lambda i: rmia(i, online=True),
    "rmia-offline": lambda i: rmia(i, online=False),
    "shadow": lambda i: shokri(i),
}

ATTACKS: tuple[str, ...] = (*THRESHOLD_ATTACKS, *REFERENCE_ATTACKS)
assert ATTACKS == NAMES, "robustmia.privacy.attack_names must list the same attacks"


def needs_references(name: str, threshold: str = "oracle") -> bool:
    return name in REFERENCE_ATTACKS or threshold == "shadow"


def needs_adversarial(name: str) -> bool:
    return name.startswith("adv-") or name == "loss-increase"


def run_attack(
    name: str, inputs: AttackInputs, *, threshold: str = "oracle", per_class: bool = False,
    oracle_member: Optional[np.ndarray] = None,
) -> AttackResult:
    if name in THRESHOLD_ATTACKS:
        signal, sign = THRESHOLD_ATTACKS[name]
        if signal not in inputs.target:
            raise ValueError(f"attack {name} needs the signal {signal!r}, which was not computed")
        return threshold_attack(inputs, signal, sign, selection=threshold, per_class=per_class, oracle_member=oracle_member)
    if name in REFERENCE_ATTACKS:
        return REFERENCE_ATTACKS[name](inputs)
    raise ValueError(f"unknown attack {name!r}; choose from: {', '.join(ATTACKS)}")
