"""A live view of a registry (the architectures' in models.names, the training methods' in training.methods): the
entries that a function picks a value for, name -> value, read at each use so that plugins registered later show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterator


class View(Mapping):
    """The entries of ``registry`` (name -> entry) for which ``pick(entry)`` gives a value (not None, False or empty)."""

    def __init__(self, registry: dict[str, Any], pick: Callable[[Any], Any]):
        self.registry, self.pick = registry, pick

    def _items(self) -> dict[str, Any]:
        return {n: v for n, e in self.registry.items() if (v := self.pick(e)) not in (None, False, (), {})}

    def __getitem__(self, name: str) -> Any:
        return self._items()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return repr(self._items())
