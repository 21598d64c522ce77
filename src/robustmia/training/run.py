"""A run folder: what one training run leaves behind, and how to open it again.

```
RUN_DIR/
  config.json      the validated TrainConfig
  split.npz        members / non-members / pool indices (see robustmia.data.splits)
  log.jsonl        one JSON record per finished epoch
  checkpoint/      the latest complete checkpoint (see robustmia.training.checkpoint)
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from robustmia.data.datasets import DatasetInfo, ImageSet, dataset_info, load_dataset
from robustmia.data.splits import Split, load_split
from robustmia.errors import UserError
from robustmia.models import build_model
from robustmia.models.inference import resolve_device
from robustmia.training.checkpoint import checkpoint_dir, load_checkpoint, load_weights
from robustmia.training.config import DEFAULT_EPOCHS, TrainConfig
from robustmia.validation import validate

CONFIG_FILE, SPLIT_FILE, LOG_FILE = "config.json", "split.npz", "log.jsonl"


def read_config_dict(run_dir: Path) -> Optional[dict[str, Any]]:
    """The stored config of a run as a plain dict, or None if the folder holds no run."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{path} is unreadable or not JSON; the run folder is damaged") from None
    return data


def run_finished(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` has a checkpoint at the end of its training (read from its meta.json alone)."""
    meta = Path(run_dir) / "checkpoint" / "meta.json"
    if not meta.is_file():
        return False
    m = json.loads(meta.read_text())
    config = TrainConfig.model_validate(m["config"])
    if config.iterations is not None:
        return m["step"] >= config.iterations
    return m["epoch"] >= (config.epochs or DEFAULT_EPOCHS)


def build_initial_model(config: TrainConfig, info: DatasetInfo) -> nn.Module:
    """The model at initialisation: the same weights for the same seed, whatever RNG state the caller has."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_model(config.model, info)


@dataclass
class Run:
    path: Path
    config: TrainConfig
    info: DatasetInfo
    split: Split

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"run folder {path} does not exist; pass the --out folder of `robustmia train`")
        data = read_config_dict(path)
        if data is None:
            raise UserError(f"{path} holds no run ({CONFIG_FILE} is missing); pass the --out folder of `robustmia train`")
        config = validate(TrainConfig, data, str(path / CONFIG_FILE))
        return cls(path, config, dataset_info(config.dataset, config.data_dir), load_split(path / SPLIT_FILE))

    def data(self) -> tuple[ImageSet, ImageSet]:
        """``(members, test)``: the target's training set and the whole test split."""
        train, test = load_dataset(self.config.dataset, self.config.data_dir)
        if (len(train), len(test)) != (self.split.n_train, self.split.n_test):
            raise UserError(
                f"{self.path / SPLIT_FILE} was made for {self.split.n_train}/{self.split.n_test} images, "
                f"but {self.config.dataset} now has {len(train)}/{len(test)}; point --data-dir at the original copy"
            )
        return train.subset(self.split.members), test

    def load_model(self, device: torch.device | str = "cpu") -> nn.Module:
        return load_trained_model(self.path, self.config, self.info, device)


def load_trained_model(path: Path, config: TrainConfig, info: DatasetInfo, device: torch.device | str = "cpu") -> nn.Module:
    """The model in a run folder's latest checkpoint, in eval mode on ``device``."""
    ckpt = checkpoint_dir(path)
    if ckpt is None:
        raise UserError(f"run {path} has no checkpoint yet; train it (or resume it with --resume) first")
    weights, _, _ = load_checkpoint(ckpt, with_optimizer=False)
    model = build_model(config.model, info)
    load_weights(model, weights, ckpt)
    return model.to(resolve_device(device) if isinstance(device, str) else device).eval()
