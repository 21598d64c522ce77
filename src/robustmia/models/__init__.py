"""Model architectures and the registry that builds them by name (``models.zoo``).

A model is a plain ``nn.Module`` from pixels in [0, 1] to logits: ``Sequential(Normalize,
network)``. Nothing outside this package needs to know which architecture it is. The names are
checked without numerical libraries (``models.names``); the rest loads on first use.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {"MODELS": "zoo", "ModelSpec": "zoo", "build_model": "zoo", "model_spec": "zoo", "Normalize": "layers", "Residual": "layers"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"robustmia.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'robustmia.models' has no attribute {name!r}")
