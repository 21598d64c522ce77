"""Named study specs shipped with robustmia (``robustmia/presets/*.yaml``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from robustmia.errors import UserError


def _files() -> dict[str, Path]:
    folder = resources.files("robustmia") / "presets"
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_presets() -> dict[str, str]:
    return {name: " ".join(str(yaml.safe_load(p.read_text()).get("description", "")).split()) for name, p in sorted(_files().items())}


def preset_path(name: str) -> Path:
    files = _files()
    if name not in files:
        raise UserError(f"unknown preset {name!r}; see `robustmia reproduce --list` ({', '.join(sorted(files))})")
    return files[name]
