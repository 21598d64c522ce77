"""The names of a run's checkpoint folders and files, and which folder holds its latest checkpoint: what a reader
needs without numerical libraries (training.run opens a run folder with them; training.checkpoint writes and reads
the tensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

CURRENT, NEW, OLD = "checkpoint", ".checkpoint-new", ".checkpoint-old"
MODEL_FILE, OPTIM_FILE, META_FILE = "model.safetensors", "optimizer.safetensors", "meta.json"


def checkpoint_dir(run_dir: Path) -> Optional[Path]:
    """The latest complete checkpoint folder of a run, or None if it has none yet."""
    for name in (CURRENT, OLD):  # OLD only survives a kill between the two renames
        d = Path(run_dir) / name
        if (d / META_FILE).is_file():
            return d
    return None
