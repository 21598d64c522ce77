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

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from robustmia.registry import View


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
    reads: tuple[str, ...] = ()
    fixes: dict[str, Any] = field(default_factory=dict)
    check: Optional[str] = None


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


def _function(entry: str) -> Callable[..., Any]:
    import importlib

    module, _, function = entry.partition(":")
    return getattr(importlib.import_module(module), function)


def objective(name: str) -> Callable[..., Any]:
    """The objective function of method ``name``, imported on first use."""
    return _function(REGISTRY[name].objective)


# the config's settings each family of methods reads (training.config), and DP-SGD's
FAMILY_SETTINGS = {"natural": (), "adversarial": ("attack_steps", "step_size", "random_start", "attack_mode"),
                   "certified": ("ramp_start", "ramp_end", "kappa_start", "kappa_end")}
PRIVATE_SETTINGS = ("dp_noise", "dp_clip", "dp_delta", "dp_batchnorm")


def _own_settings(s: MethodSpec) -> set[str]:
    """The config settings that a method's family, DP-SGD (where it is private) and its own ``reads`` give it."""
    return set(FAMILY_SETTINGS.get(s.family, ())) | set(PRIVATE_SETTINGS if s.private else ()) | set(s.reads)


def settings_read(name: str) -> set[str]:
    """The config's method settings that method ``name`` reads (the rest of :func:`method_settings` it ignores)."""
    return _own_settings(REGISTRY[name]) - set(REGISTRY[name].fixes)


def method_settings() -> set[str]:
    """Every config setting that some method reads and others ignore."""
    return set().union(*(_own_settings(s) for s in REGISTRY.values()))


def fixed(name: str, setting: str, value: Any) -> Any:
    """``setting`` as method ``name`` trains with it: its fixed value, else ``value`` (the config's)."""
    return REGISTRY[name].fixes.get(setting, value)


def uses_eps(name: str) -> bool:
    """Whether eps changes how method ``name`` trains (an adversarial or certified method's does; a natural run's eps only
    names the radius its evaluation attacks at)."""
    return REGISTRY[name].family in ("adversarial", "certified")


def check_config(config: Any, sizes: Optional[tuple[int, int]], where: str) -> None:
    """The method's own check of ``config`` (its ``check``), if it has one."""
    spec = REGISTRY[config.method]
    if spec.check is not None:
        _function(spec.check)(config, sizes, where)


METHODS = View(REGISTRY, lambda s: s)
ADVERSARIAL = View(REGISTRY, lambda s: s.attack)  # name -> (default attack steps, step size / eps, BatchNorm mode)
CERTIFIED = View(REGISTRY, lambda s: s.bound)  # name -> (bound, kappa start, kappa end)
DP = View(REGISTRY, lambda s: s.private)  # DP-SGD methods (training.private)
STACKABLE = View(REGISTRY, lambda s: s.stacks)  # methods whose K models of one recipe train stacked (training.stacked)


from robustmia.training.methods import builtin  # noqa: E402,F401  (the built-in methods register themselves)
