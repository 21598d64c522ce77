"""The attack registry: the one place that knows every membership attack's name, what it
needs and what it does. The CLI's choices, spec validation, the audit and the report all
read it, so an attack is added by writing one module that registers it:

```python
from robustmia.privacy.attacks import AttackScores, register_attack

@register_attack("max-logit", help="threshold on the largest logit")
def max_logit(inputs, options):
    return AttackScores(inputs.target["logits"].max(1))
```

Modules named in ``$ROBUSTMIA_PLUGINS`` (comma-separated) are imported with the built-in
attacks, so a registered attack reaches the command line too. The registry imports no
deep-learning code: specs are validated against it in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


from robustmia.privacy.attacks.base import AttackInputs, AttackOptions, AttackScores

AttackFn = Callable[[AttackInputs, AttackOptions], AttackScores]


@dataclass(frozen=True)
class AttackSpec:
    """``references``: needs reference models (and ``min_references`` of them);
    ``adversarial``: reads the target's signals on PGD points (``adv_*``); ``threshold``: a
    threshold attack on one signal, whose threshold may be picked on reference models
    (``--threshold shadow``); ``population``: population examples it needs (RMIA's z);
    ``default``: one of the attacks run when none are named; ``probes``: signals it needs that
    only the model itself gives (privacy.probes: label-only, white-box, verified margin);
    ``certified``: it needs a model the certified bounds handle; ``family``: what the attacker
    sees (``black-box``, ``label-only``, ``white-box``, ``verified``, ``reference-free``), which
    groups it in the report; ``module``: the module that registered it (a plugin's, outside robustmia);
    ``per_example``: the reference models it needs for every example, (IN, OUT) (LiRA fits Gaussians to them)."""

    name: str
    run: AttackFn
    help: str
    references: bool = False
    adversarial: bool = False
    threshold: bool = False
    min_references: int = 2
    population: int = 0
    default: bool = False
    probes: tuple[str, ...] = ()
    certified: bool = False
    family: str = "black-box"
    module: str = "robustmia"
    per_example: tuple[int, int] = (0, 0)

    @property
    def plugin(self) -> Optional[str]:
        """The plugin module that registered this attack, or None for robustmia's own."""
        return None if self.module.split(".")[0] == "robustmia" else self.module


ATTACKS: dict[str, AttackSpec] = {}


def register_attack(name: str, *, help: str, **needs) -> Callable[[AttackFn], AttackFn]:
    """Register ``fn(inputs, options) -> AttackScores`` as attack ``name`` (see :class:`AttackSpec`)."""

    def add(fn: AttackFn) -> AttackFn:
        if name in ATTACKS and ATTACKS[name].run is not fn:
            raise ValueError(f"attack {name!r} is registered twice")
        ATTACKS[name] = AttackSpec(name, fn, help, module=getattr(fn, "__module__", None) or "robustmia", **needs)
        return fn

    return add


def attack_spec(name: str) -> AttackSpec:
    try:
        return ATTACKS[name]
    except KeyError:
        raise ValueError(f"unknown attack {name!r}; choose from: {', '.join(ATTACKS)}") from None


def default_attacks() -> list[str]:
    return [a.name for a in ATTACKS.values() if a.default]


def needs_references(name: str, selection: str = "oracle") -> bool:
    spec = attack_spec(name)
    return spec.references or (spec.threshold and selection in ("shadow", "both"))


def needs_adversarial(name: str) -> bool:
    return attack_spec(name).adversarial


NEW_FAMILIES = ("label-only", "white-box", "verified", "reference-free")  # beyond the paper's black-box attacks


def selections(name: str, threshold: str) -> list[str]:
    """The threshold selections an attack runs under: both for a threshold attack with
    ``threshold="both"``; attacks that are not threshold attacks make their own decision."""
    if not attack_spec(name).threshold:
        return ["oracle"]
    return ["oracle", "shadow"] if threshold == "both" else [threshold]


def they_need(names: list[str]) -> str:
    """``"rmia needs"`` / ``"rmia, qmia need"``: the start of a refusal naming the attacks."""
    return f"{', '.join(names)} need{'s' if len(names) == 1 else ''}"


def check_references(attacks: list[str], references: int) -> None:
    """Raise ValueError if the attacks need more reference models than ``references``."""
    short = [a for a in attacks if attack_spec(a).references and attack_spec(a).min_references > references]
    if short:
        need = max(attack_spec(a).min_references for a in short)
        raise ValueError(f"{', '.join(short)} need references >= {need}; use more references or another attack")


def run_attack(name: str, inputs: AttackInputs, *, selection: str = "oracle", per_class: bool = False) -> AttackScores:
    """The scores of one attack on ``inputs`` (which hold no truth of the examples scored), its threshold to be picked by
    ``selection`` (``oracle``: by the metrics, on the truth; ``shadow``: by the attack, on reference models)."""
    return attack_spec(name).run(inputs, AttackOptions(selection, per_class))
