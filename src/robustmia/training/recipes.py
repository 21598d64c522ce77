"""Named training recipes: the paper's configurations and their CPU-scale variants.

Each recipe is a YAML file of TrainConfig keys in ``robustmia/recipes/``, its first line a
comment saying what it is. ``robustmia train --recipe NAME`` starts from it; ``--config``
and flags override it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from robustmia.errors import UserError


def _files() -> dict[str, Any]:
    folder = resources.files("robustmia") / "recipes"
    return {p.name.removesuffix(".yaml"): p for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_recipes() -> dict[str, str]:
    """Recipe name -> its one-line description."""
    return {name: p.read_text().splitlines()[0].lstrip("# ").strip() for name, p in sorted(_files().items())}


def load_recipe(name: str) -> dict[str, Any]:
    files = _files()
    if name not in files:
        raise UserError(f"unknown recipe {name!r}; see `robustmia recipes` (e.g. {', '.join(sorted(files)[:3])})")
    return yaml.safe_load(files[name].read_text())
