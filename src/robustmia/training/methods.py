"""Training methods: the registry that knows every method's name, family, objective, defaults and own
settings. The config's validation, the CLI's choices, the loop, stacking and the reports all read it, so a
method is added by one module that registers it (imported through ``$ROBUSTMIA_PLUGINS``, as an attack
plugin is):

```python
from robustmia.training.methods import register_method

register_method("mixup", objective="my_methods:mixup", help="natural training on mixed pairs",
                settings={"mixup_alpha": 0.2})          # read as config.method_args["mixup_alpha"]

def mixup(model, x, y, config, ctx):                     # returns objectives.StepOutput(losses, logits)
    ...
```

An objective is named by ``module:function`` and imported on first use, so the registry (and the
validation of every config and spec) imports no numerical library. The families' views
(:data:`ADVERSARIAL`, :data:`CERTIFIED`, :data:`DP`, :data:`STACKABLE`, :data:`METHODS`) read the registry
live, plugins included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional


@dataclass(frozen=True)
class MethodSpec:
    """``family``: natural, adversarial or certified; ``attack``: an adversarial method's default attack
    steps, step size as a fraction of eps and BatchNorm mode; ``bound``: a certified method's bound and
    default kappa start and end (the weight of the clean loss); ``private``: DP-SGD (Poisson batches,
    clipping and noise; training.private); ``stacks``: K models of one recipe can train as one batched
    computation (training.stacked); ``settings``: its own settings and their defaults, given as the
    config's ``method_args``."""

    name: str
    objective: str
    help: str
    family: str = "natural"
    attack: Optional[tuple[int, float, str]] = None
    bound: Optional[tuple[str, float, float]] = None
    private: bool = False
    stacks: bool = True
    settings: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, MethodSpec] = {}


def register_method(name: str, *, objective: str, help: str, **spec: Any) -> MethodSpec:
    """Register training method ``name`` (see :class:`MethodSpec`); its ``objective`` is ``module:function``."""
    if name in REGISTRY and REGISTRY[name].objective != objective:
        raise ValueError(f"training method {name!r} is registered twice")
    if spec.get("attack") is not None:
        spec.setdefault("family", "adversarial")
    if spec.get("bound") is not None:
        spec.setdefault("family", "certified")
    REGISTRY[name] = MethodSpec(name, objective, help, **spec)
    return REGISTRY[name]


def method_spec(name: str) -> Optional[MethodSpec]:
    """The method ``name``, looking in the plugins too (``$ROBUSTMIA_PLUGINS``), or None."""
    if name not in REGISTRY:
        from robustmia.entry_points import load_plugins

        load_plugins()
    return REGISTRY.get(name)


def objective(name: str) -> Callable[..., Any]:
    """The objective function of method ``name``, imported on first use."""
    import importlib

    module, _, function = REGISTRY[name].objective.partition(":")
    return getattr(importlib.import_module(module), function)


class _View(Mapping):
    """The registered methods that ``pick`` gives a value for, name -> value, read live."""

    def __init__(self, pick: Callable[[MethodSpec], Any]):
        self.pick = pick

    def _items(self) -> dict[str, Any]:
        return {n: v for n, s in REGISTRY.items() if (v := self.pick(s)) not in (None, False)}

    def __getitem__(self, name: str) -> Any:
        return self._items()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return repr(self._items())


METHODS = _View(lambda s: s)
ADVERSARIAL = _View(lambda s: s.attack)  # name -> (default attack steps, step size / eps, BatchNorm mode)
CERTIFIED = _View(lambda s: s.bound)  # name -> (bound, kappa start, kappa end)
DP = _View(lambda s: s.private)  # DP-SGD methods (training.private)
STACKABLE = _View(lambda s: s.stacks)  # methods whose K models of one recipe train stacked (training.stacked)

_OBJECTIVES = "robustmia.training.objectives"
register_method("natural", objective=f"{_OBJECTIVES}:natural", help="cross-entropy on the members")
register_method("pgd", objective=f"{_OBJECTIVES}:adversarial", attack=(7, 0.25, "train"),
                help="Madry et al.: 7 steps of eps/4 (2/255 at 8/255) on the train-mode model")
register_method("trades", objective=f"{_OBJECTIVES}:trades", attack=(10, 0.25, "eval"),
                help="Zhang et al.: clean loss + beta KL to a 10-step eval-mode attack's point")
register_method("fgsm_rs", objective=f"{_OBJECTIVES}:adversarial", attack=(1, 1.25, "train"),
                help="Wong et al. (2020): one step of 1.25 eps from a random start")
register_method("dp_pgd", objective=f"{_OBJECTIVES}:adversarial", attack=(7, 0.25, "train"), private=True, stacks=False,
                help="PGD examples on the current model, then a DP-SGD step (training.private)")
register_method("convex_dual", objective=f"{_OBJECTIVES}:certified", bound=("wong-kolter", 0.0, 0.0), stacks=False,
                help="Wong & Kolter: the robust loss of the convex outer polytope's dual alone")
register_method("ibp", objective=f"{_OBJECTIVES}:certified", bound=("ibp", 1.0, 0.5), stacks=False,
                help="Gowal et al.: interval bounds, kappa 1 -> 0.5")
register_method("crown_ibp", objective=f"{_OBJECTIVES}:certified", bound=("crown-ibp", 1.0, 0.5), stacks=False,
                help="Zhang et al.: beta 1 -> 0 mixes CROWN-IBP into IBP")
register_method("dpsgd", objective=f"{_OBJECTIVES}:natural", private=True, stacks=False,
                help="DP-SGD (Abadi et al.) through opacus: natural training made private")
