"""Named study specs shipped with robustmia (``robustmia/presets/*.yaml``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from robustmia.packaged import packaged_files, packaged_path


def list_presets() -> dict[str, str]:
    return {name: " ".join(str(yaml.safe_load(p.read_text()).get("description", "")).split())
            for name, p in sorted(packaged_files("presets").items())}


def preset_path(name: str) -> Path:
    return packaged_path("presets", name, "robustmia reproduce --list")
