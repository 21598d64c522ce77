"""Building the architectures by name, from their registry (models.names).

A model is a plain ``nn.Module`` from pixels in [0, 1] to logits: ``Sequential(Normalize,
network)``. Nothing outside this package needs to know which architecture it is.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from torch import nn

from robustmia.data.datasets import DatasetInfo
from robustmia.errors import UserError
from robustmia.models.layers import Normalize, Residual
from robustmia.models.names import ENTRIES, ModelEntry, entry

Builder = Callable[..., nn.Module]  # (channels, height, width, classes, **arguments) -> network


@dataclass(frozen=True)
class ModelSpec:
    build: Builder
    min_size: int  # smallest input height/width the architecture accepts
    description: str
    arguments: tuple[str, ...] = ()  # the keyword arguments the builder takes (its widths, depth, ...)
    name: str = ""  # the registry's name (its argument schema: models.names)

    def build_with(self, c: int, h: int, w: int, num_classes: int, args: Optional[dict[str, Any]], where: str) -> nn.Module:
        """The network with ``args`` given to the builder; an argument it does not take is one line."""
        unknown = sorted(set(args or {}) - set(self.arguments))
        if unknown:
            takes = f"it takes {', '.join(self.arguments)}" if self.arguments else "it takes none"
            raise UserError(f"{where}: unknown argument {unknown[0]!r} ({takes})")
        try:
            from robustmia.models.names import check_arguments

            if self.name:
                check_arguments(self.name, args or {})
            return sized(lambda: self.build(c, h, w, num_classes, **(args or {})), where)
        except (TypeError, ValueError) as e:
            raise UserError(f"{where}: {e}") from None


MAX_PARAMETERS = 4_000_000_000  # 16 GB of float32 weights: beyond it a model fits no one machine (and less where RAM is less)


def sized(build: Callable[[], nn.Module], where: str) -> nn.Module:
    """``build()``, once a build on the meta device (no memory) has shown that its weights fit: a width or depth that
    would ask for terabytes is one line naming the memory it would need, not an allocator's crash or a hang. (A
    builder that cannot run on the meta device is built directly.)"""
    import torch

    try:
        with torch.device("meta"):
            probe = build()
        count = sum(p.numel() for p in probe.parameters()) + sum(b.numel() for b in probe.buffers())
    except (UserError, TypeError, ValueError):
        raise
    except Exception:  # noqa: BLE001  (e.g. data-dependent code the meta device cannot run)
        count = 0
    most = min(MAX_PARAMETERS, _memory() // TRAINING_BYTES)
    if count > most:
        raise UserError(f"{where}: the model would have {count / 1e9:.3g} billion parameters: {4 * count / 2**30:,.1f} GiB of float32 "
                        f"weights, about {TRAINING_BYTES * count / 2**30:,.0f} GiB to train with gradients and momentum, and this "
                        f"machine has {_memory() / 2**30:,.0f} GiB; give smaller widths or depth (at most {most / 1e9:.3g} billion "
                        "parameters here)")
    return build()


TRAINING_BYTES = 16  # per parameter while training: float32 weights, gradients, momentum and headroom


def _memory() -> int:
    """This machine's physical memory in bytes (a large number where the system does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 50


def _spec(e: ModelEntry) -> ModelSpec:
    module, _, function = e.builder.partition(":")
    builder = getattr(importlib.import_module(module), function)
    build = (lambda c, h, w, k, **args: builder(c, h, w, k, **e.fixed, **args)) if e.fixed else builder
    return ModelSpec(build, e.min_size, e.description, tuple(e.arguments), e.name)


class _Models(Mapping):
    """Name -> ModelSpec of every registered architecture (plugins included), built on access."""

    def __getitem__(self, name: str) -> ModelSpec:
        return _spec(ENTRIES[name])

    def __iter__(self) -> Iterator[str]:
        return iter(ENTRIES)

    def __len__(self) -> int:
        return len(ENTRIES)


MODELS = _Models()


def model_spec(name: str) -> ModelSpec:
    return _spec(entry(name))


def build_model(name: str, info: DatasetInfo, args: Optional[dict[str, Any]] = None) -> nn.Module:
    """Build model ``name`` (with ``args``, its model_args) for images shaped like ``info``: normalisation first, logits out."""
    spec = model_spec(name)
    c, h, w = info.shape
    if min(h, w) < spec.min_size:
        raise UserError(f"model {name!r} needs images of at least {spec.min_size}x{spec.min_size}; {info.name} has {h}x{w}")
    return nn.Sequential(Normalize(info.mean, info.std), spec.build_with(c, h, w, info.num_classes, args, f"model {name}"))


__all__ = ["MODELS", "ModelSpec", "Normalize", "Residual", "build_model", "model_spec"]
