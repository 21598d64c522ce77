"""Named training recipes: the paper's configurations and their CPU-scale variants.

Each recipe is a YAML file of TrainConfig keys in ``robustmia/recipes/``, its first line a
comment saying what it is. ``robustmia train --recipe NAME`` starts from it; ``--config``
and flags override it.
"""

from __future__ import annotations

from typing import Any

from robustmia.packaged import load_packaged, packaged_files


def list_recipes() -> dict[str, str]:
    """Recipe name -> its one-line description."""
    return {name: p.read_text().splitlines()[0].lstrip("# ").strip() for name, p in sorted(packaged_files("recipes").items())}


def load_recipe(name: str) -> dict[str, Any]:
    return load_packaged("recipes", name, "robustmia recipes")
