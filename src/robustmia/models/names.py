"""The architectures' names, checked without numerical libraries (so that a config or spec naming
an unknown model, or a WideResNet too large to build, is refused before anything is imported)."""

from __future__ import annotations

import re
from typing import Any

from robustmia.errors import UserError

DESCRIPTIONS: dict[str, str] = {
    "wrn-34-10": "WideResNet-34-10 (filters 16/160/320/640): the paper's CIFAR-10 model, 46M params",
    "wrn-34-4": "WideResNet-34-4 (filters 16/64/128/256): the paper's SVHN model",
    "wrn-D-K": "any WideResNet, depth D = 6n+4, width K (e.g. wrn-16-4, wrn-28-10)",
    "wong-cnn": "Wong et al.'s certifiable 4-layer CNN (conv16-conv32-fc100-fc10), no BatchNorm",
    "wong-resnet": "Wong et al.'s certifiable small ResNet, the paper's 'WRN-10-1', no BatchNorm",
    "small-cnn": "small CNN for CPU work on 32x32 images (0.62M params on CIFAR-10)",
    "fast-cnn": "airbench-style fast CNN: frozen patch whitening from the members, GELU, BatchNorm (widths, depth, tta as arguments)",
    "digits-cnn": "small CNN for 8x8 digits (conv32-conv64-pool-fc128-fc10)",
    "digits-mlp": "MLP with two hidden layers of 256 units",
}
# the keyword arguments an architecture's builder takes (a config's model_args, --arch-args), and the smallest
# ones, which the tiny twins of presets and recipes use (experiments.twins)
ARGUMENTS: dict[str, tuple[str, ...]] = {"fast-cnn": ("widths", "depth", "whiten", "tta", "scale", "whiten_eps")}
TINY_ARGUMENTS: dict[str, dict[str, Any]] = {"fast-cnn": {"widths": [8, 8, 8]}}


def check_arguments(name: str, args: dict[str, Any]) -> None:
    """Raise ValueError naming the first argument that architecture ``name`` does not take."""
    takes = ARGUMENTS.get(name, ())
    unknown = sorted(set(args) - set(takes))
    if unknown:
        raise ValueError(f"model {name} takes no argument {unknown[0]!r} ({'it takes ' + ', '.join(takes) if takes else 'it takes none'})")


# built only from layers the certified bounds handle (no pooling, no BatchNorm)
CERTIFIABLE = ("wong-cnn", "wong-resnet", "digits-mlp")


def uncertifiable_layers(name: str) -> str:
    """What in architecture ``name`` the certified bounds cannot handle."""
    return "WideResNet blocks (BatchNorm2d)" if WRN_NAME.fullmatch(name) else "MaxPool2d layers"
WRN_NAME = re.compile(r"wrn-(\d+)-(\d+)")
MAX_WRN_DEPTH, MAX_WRN_WIDTH = 202, 32  # beyond these a WideResNet does not fit any one GPU


def check_model_name(name: str) -> tuple[int, int] | None:
    """Raise if ``name`` is no architecture; for a WideResNet, return its (depth, width)."""
    if name in DESCRIPTIONS and name != "wrn-D-K":
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
