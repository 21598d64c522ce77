"""The registry that builds the architectures by name.

A model is a plain ``nn.Module`` from pixels in [0, 1] to logits: ``Sequential(Normalize,
network)``. Nothing outside this package needs to know which architecture it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from torch import nn

from robustmia.data.datasets import DatasetInfo
from robustmia.errors import UserError
from robustmia.models.convex import wong_cnn, wong_resnet
from robustmia.models.fast import fast_cnn
from robustmia.models.layers import Normalize, Residual
from robustmia.models.names import ARGUMENTS, DESCRIPTIONS, check_model_name
from robustmia.models.small import digits_cnn, digits_mlp, small_cnn
from robustmia.models.wrn import WideResNet

Builder = Callable[..., nn.Module]  # (channels, height, width, classes, **arguments) -> network


@dataclass(frozen=True)
class ModelSpec:
    build: Builder
    min_size: int  # smallest input height/width the architecture accepts
    description: str
    arguments: tuple[str, ...] = ()  # the keyword arguments the builder takes (its widths, depth, ...)

    def build_with(self, c: int, h: int, w: int, num_classes: int, args: Optional[dict[str, Any]], where: str) -> nn.Module:
        """The network with ``args`` given to the builder; an argument it does not take is one line."""
        unknown = sorted(set(args or {}) - set(self.arguments))
        if unknown:
            takes = f"it takes {', '.join(self.arguments)}" if self.arguments else "it takes none"
            raise UserError(f"{where}: unknown argument {unknown[0]!r} ({takes})")
        try:
            return self.build(c, h, w, num_classes, **(args or {}))
        except (TypeError, ValueError) as e:
            raise UserError(f"{where}: {e}") from None


def _wrn(depth: int, width: int) -> Builder:
    return lambda c, h, w, k: WideResNet(depth, width, c, k)


_BUILDERS: dict[str, tuple[Builder, int]] = {  # builder, smallest input height/width it accepts
    "wrn-34-10": (_wrn(34, 10), 8),
    "wrn-34-4": (_wrn(34, 4), 8),
    "wrn-D-K": (_wrn(16, 4), 8),
    "wong-cnn": (wong_cnn, 4),
    "wong-resnet": (wong_resnet, 4),
    "small-cnn": (small_cnn, 8),
    "fast-cnn": (fast_cnn, 5),
    "digits-cnn": (digits_cnn, 2),
    "digits-mlp": (digits_mlp, 1),
}
MODELS: dict[str, ModelSpec] = {name: ModelSpec(build, size, DESCRIPTIONS[name], ARGUMENTS.get(name, ()))
                                for name, (build, size) in _BUILDERS.items()}


def model_spec(name: str) -> ModelSpec:
    wrn = check_model_name(name)
    if name in MODELS and name != "wrn-D-K":
        return MODELS[name]
    depth, width = wrn
    return ModelSpec(_wrn(depth, width), 8, f"WideResNet-{depth}-{width}")


def build_model(name: str, info: DatasetInfo, args: Optional[dict[str, Any]] = None) -> nn.Module:
    """Build model ``name`` (with ``args``, its model_args) for images shaped like ``info``: normalisation first, logits out."""
    spec = model_spec(name)
    c, h, w = info.shape
    if min(h, w) < spec.min_size:
        raise UserError(f"model {name!r} needs images of at least {spec.min_size}x{spec.min_size}; {info.name} has {h}x{w}")
    return nn.Sequential(Normalize(info.mean, info.std), spec.build_with(c, h, w, info.num_classes, args, f"model {name}"))


__all__ = ["MODELS", "ModelSpec", "Normalize", "Residual", "build_model", "model_spec"]
