"""Model architectures and the registry that builds them by name.

A model is a plain ``nn.Module`` from pixels in [0, 1] to logits: ``Sequential(Normalize,
network)``. Nothing outside this package needs to know which architecture it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from torch import nn

from robustmia.data.datasets import DatasetInfo
from robustmia.errors import UserError
from robustmia.models.convex import wong_cnn, wong_resnet
from robustmia.models.layers import Normalize, Residual
from robustmia.models.small import digits_cnn, digits_mlp, small_cnn
from robustmia.models.wrn import WideResNet

Builder = Callable[[int, int, int, int], nn.Module]  # (channels, height, width, classes) -> network


@dataclass(frozen=True)
class ModelSpec:
    build: Builder
    min_size: int  # smallest input height/width the architecture accepts
    description: str


def _wrn(depth: int, width: int) -> Builder:
    return lambda c, h, w, k: WideResNet(depth, width, c, k)


MODELS: dict[str, ModelSpec] = {
    "wrn-34-10": ModelSpec(_wrn(34, 10), 8, "WideResNet-34-10 (filters 16/160/320/640): the paper's CIFAR-10 model, 46M params"),
    "wrn-34-4": ModelSpec(_wrn(34, 4), 8, "WideResNet-34-4 (filters 16/64/128/256): the paper's SVHN model"),
    "wrn-D-K": ModelSpec(_wrn(16, 4), 8, "any WideResNet, depth D = 6n+4, width K (e.g. wrn-16-4, wrn-28-10)"),
    "wong-cnn": ModelSpec(wong_cnn, 4, "Wong et al.'s certifiable 4-layer CNN (conv16-conv32-fc100-fc10), no BatchNorm"),
    "wong-resnet": ModelSpec(wong_resnet, 4, "Wong et al.'s certifiable small ResNet, the paper's 'WRN-10-1', no BatchNorm"),
    "small-cnn": ModelSpec(small_cnn, 8, "small CNN for CPU work on 32x32 images (0.62M params on CIFAR-10)"),
    "digits-cnn": ModelSpec(digits_cnn, 2, "small CNN for 8x8 digits (conv32-conv64-pool-fc128-fc10)"),
    "digits-mlp": ModelSpec(digits_mlp, 1, "MLP with two hidden layers of 256 units"),
}

_WRN_NAME = re.compile(r"wrn-(\d+)-(\d+)")


def model_spec(name: str) -> ModelSpec:
    if name in MODELS and name != "wrn-D-K":
        return MODELS[name]
    m = _WRN_NAME.fullmatch(name)
    if m:
        depth, width = int(m.group(1)), int(m.group(2))
        if depth < 10 or (depth - 4) % 6 or width < 1:
            raise UserError(f"model {name!r}: a WideResNet needs depth 6n+4 >= 10 and width >= 1 (e.g. wrn-28-10)")
        return ModelSpec(_wrn(depth, width), 8, f"WideResNet-{depth}-{width}")
    names = ", ".join(n for n in MODELS)
    raise UserError(f"unknown model {name!r}; choose one of: {names} (see `robustmia models`)")


def build_model(name: str, info: DatasetInfo) -> nn.Module:
    """Build model ``name`` for images shaped like ``info``: normalisation first, logits out."""
    spec = model_spec(name)
    c, h, w = info.shape
    if min(h, w) < spec.min_size:
        raise UserError(f"model {name!r} needs images of at least {spec.min_size}x{spec.min_size}; {info.name} has {h}x{w}")
    return nn.Sequential(Normalize(info.mean, info.std), spec.build(c, h, w, info.num_classes))


__all__ = ["MODELS", "ModelSpec", "Normalize", "Residual", "build_model", "model_spec"]
