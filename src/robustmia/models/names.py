"""The architectures' registry: every model's name, builder, description, smallest input, arguments and
whether the certified bounds handle it, checked without numerical libraries (so that a config or spec naming
an unknown model, or a WideResNet too large to build, is refused before anything is imported). A builder is
named by ``module:function`` and imported on first use (models.zoo builds the model); adding an architecture
is one module that defines its builder and calls :func:`register_model` (a plugin, through
``$ROBUSTMIA_PLUGINS``, or a line below for robustmia's own).

A builder takes ``(channels, height, width, classes, **arguments)`` and returns the network without
normalisation (models.zoo puts robustmia's in front of it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from robustmia.errors import UserError
from robustmia.registry import View


@dataclass(frozen=True)
class Arg:
    """What one architecture argument may be: ``kind`` int, float, bool, "ints" (a list of ints) or "any", within
    [``low``, ``high``] (each element of a list), a list ``length`` (fewest, most) long. Strict: a bool is a bool (the
    string "false" is not), an int an int, every number finite."""

    kind: str
    low: float = float("-inf")
    high: float = float("inf")
    length: tuple[int, int] = (1, 16)

    def check(self, name: str, value: Any) -> None:
        import math

        def number(v: Any, integral: bool) -> bool:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return False
            return (isinstance(v, int) or (not integral and math.isfinite(v))) and self.low <= v <= self.high

        bounds = f" in [{self.low:g}, {self.high:g}]"
        if self.kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false (got {value!r})")
        if self.kind == "int" and not number(value, True):
            raise ValueError(f"{name} must be a whole number{bounds} (got {value!r})")
        if self.kind == "float" and not number(value, False):
            raise ValueError(f"{name} must be a finite number{bounds} (got {value!r})")
        if self.kind == "ints":
            lo, hi = self.length
            if not isinstance(value, (list, tuple)) or not lo <= len(value) <= hi or not all(number(v, True) for v in value):
                raise ValueError(f"{name} must be a list of {lo} to {hi} whole numbers, each{bounds} (got {value!r})")


@dataclass(frozen=True)
class ModelEntry:
    """``fixed``: arguments the name itself sets (a WideResNet's depth and width); ``arguments``: those a config's
    ``model_args`` (or ``--arch-args``) may set, each described by its :class:`Arg` (checked before anything is built);
    ``tiny``: the smallest of them (experiments.twins); ``certifiable``: built only from layers the certified bounds
    handle, else ``blocking``: what they cannot."""

    name: str
    builder: str
    description: str
    min_size: int
    fixed: dict[str, Any] = field(default_factory=dict)
    arguments: dict[str, Arg] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    certifiable: bool = False
    blocking: str = "MaxPool2d layers"


ENTRIES: dict[str, ModelEntry] = {}


def register_model(name: str, *, builder: str, description: str, min_size: int, **entry: Any) -> ModelEntry:
    """Register architecture ``name`` (see :class:`ModelEntry`); ``arguments`` named without a schema (a tuple of names)
    are taken as they come."""
    if isinstance(entry.get("arguments"), (tuple, list)):
        entry["arguments"] = {a: Arg("any") for a in entry["arguments"]}
    if name in ENTRIES and ENTRIES[name].builder != builder:
        raise ValueError(f"model {name!r} is registered twice")
    ENTRIES[name] = ModelEntry(name, builder, description, min_size, **entry)
    return ENTRIES[name]


DESCRIPTIONS = View(ENTRIES, lambda e: e.description)
ARGUMENTS = View(ENTRIES, lambda e: e.arguments)  # the keyword arguments a config's model_args may give
TINY_ARGUMENTS = View(ENTRIES, lambda e: e.tiny)  # the smallest of them (the tiny twins of presets and recipes)
CERTIFIABLE = View(ENTRIES, lambda e: e.certifiable)  # built only from layers the certified bounds handle (no pooling, no BatchNorm)

WRN_NAME = re.compile(r"wrn-(\d+)-(\d+)")
MAX_WRN_DEPTH, MAX_WRN_WIDTH = 202, 32  # beyond these a WideResNet does not fit any one GPU


def entry(name: str) -> ModelEntry:
    """The registry's entry for ``name`` (a WideResNet of any valid depth and width included), or one line."""
    check_model_name(name)
    if name in ENTRIES and name != "wrn-D-K":
        return ENTRIES[name]
    depth, width = (int(v) for v in WRN_NAME.fullmatch(name).groups())
    base = ENTRIES["wrn-D-K"]
    return ModelEntry(name, base.builder, f"WideResNet-{depth}-{width}", base.min_size, {"depth": depth, "width": width},
                      blocking=base.blocking)


def check_arguments(name: str, args: dict[str, Any]) -> None:
    """Raise ValueError naming the first argument that architecture ``name`` does not take, or whose value its schema
    refuses (:class:`Arg`)."""
    takes = ARGUMENTS.get(name, {})
    unknown = sorted(set(args) - set(takes))
    if unknown:
        raise ValueError(f"model {name} takes no argument {unknown[0]!r} ({'it takes ' + ', '.join(takes) if takes else 'it takes none'})")
    for key, value in args.items():
        takes[key].check(key, value)


def uncertifiable_layers(name: str) -> str:
    """What in architecture ``name`` the certified bounds cannot handle."""
    return entry(name).blocking


def check_model_name(name: str) -> tuple[int, int] | None:
    """Raise if ``name`` is no architecture; for a WideResNet, return its (depth, width)."""
    if name not in ENTRIES:
        from robustmia.entry_points import load_plugins

        load_plugins()  # a plugin may register it
    if name in ENTRIES and name != "wrn-D-K":
        m = WRN_NAME.fullmatch(name)
        return (int(m.group(1)), int(m.group(2))) if m else None
    m = WRN_NAME.fullmatch(name)
    if m:
        depth, width = int(m.group(1)), int(m.group(2))
        if depth < 10 or (depth - 4) % 6 or width < 1:
            raise UserError(f"model {name!r}: a WideResNet needs depth 6n+4 >= 10 and width >= 1 (e.g. wrn-28-10)")
        if depth > MAX_WRN_DEPTH or width > MAX_WRN_WIDTH:
            raise UserError(f"model {name!r} is too large to build (depth at most {MAX_WRN_DEPTH}, width at most {MAX_WRN_WIDTH})")
        return depth, width
    raise UserError(f"unknown model {name!r}; choose one of: {', '.join(DESCRIPTIONS)} (see `robustmia models`)")


_WRN, _BN = "robustmia.models.wrn:wide_resnet", "WideResNet blocks (BatchNorm2d)"
register_model("wrn-34-10", builder=_WRN, min_size=8, fixed={"depth": 34, "width": 10}, blocking=_BN,
               description="WideResNet-34-10 (filters 16/160/320/640): the paper's CIFAR-10 model, 46M params")
register_model("wrn-34-4", builder=_WRN, min_size=8, fixed={"depth": 34, "width": 4}, blocking=_BN,
               description="WideResNet-34-4 (filters 16/64/128/256): the paper's SVHN model")
register_model("wrn-D-K", builder=_WRN, min_size=8, fixed={"depth": 16, "width": 4}, blocking=_BN,
               description="any WideResNet, depth D = 6n+4, width K (e.g. wrn-16-4, wrn-28-10)")
register_model("wong-cnn", builder="robustmia.models.convex:wong_cnn", min_size=4, certifiable=True,
               description="Wong et al.'s certifiable 4-layer CNN (conv16-conv32-fc100-fc10), no BatchNorm")
register_model("wong-resnet", builder="robustmia.models.convex:wong_resnet", min_size=4, certifiable=True,
               description="Wong et al.'s certifiable small ResNet, the paper's 'WRN-10-1', no BatchNorm")
register_model("small-cnn", builder="robustmia.models.small:small_cnn", min_size=8,
               description="small CNN for CPU work on 32x32 images (0.62M params on CIFAR-10)")
register_model("fast-cnn", builder="robustmia.models.fast:fast_cnn", min_size=5, blocking="MaxPool2d and BatchNorm2d layers",
               arguments={"widths": Arg("ints", 1, 4096, (1, 6)), "depth": Arg("int", 1, 8), "whiten": Arg("bool"), "tta": Arg("bool"),
                          "scale": Arg("float", 1e-4, 1e3), "whiten_eps": Arg("float", 1e-12, 1e3)}, tiny={"widths": [8, 8, 8]},
               description="airbench-style fast CNN: frozen patch whitening from the members, GELU, BatchNorm "
                           "(widths, depth, tta as arguments)")
register_model("digits-cnn", builder="robustmia.models.small:digits_cnn", min_size=2,
               description="small CNN for 8x8 digits (conv32-conv64-pool-fc128-fc10)")
register_model("digits-mlp", builder="robustmia.models.small:digits_mlp", min_size=1, certifiable=True,
               description="MLP with two hidden layers of 256 units")
