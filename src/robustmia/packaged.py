"""The YAML files shipped inside the package (``recipes/*.yaml``, ``presets/*.yaml``): one loader
for both, each file named by its stem."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from robustmia.errors import UserError


def packaged_files(folder: str) -> dict[str, Path]:
    """Name -> path of every ``robustmia/<folder>/*.yaml``."""
    root = resources.files("robustmia") / folder
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def packaged_path(folder: str, name: str, listing: str) -> Path:
    """The file ``name`` of ``folder``; an unknown name is one line pointing at ``listing`` (the command that lists them)."""
    files = packaged_files(folder)
    if name not in files:
        raise UserError(f"unknown {folder.removesuffix('s')} {name!r}; see `{listing}` ({', '.join(sorted(files))})")
    return files[name]


def load_packaged(folder: str, name: str, listing: str) -> dict[str, Any]:
    return yaml.safe_load(packaged_path(folder, name, listing).read_text())
