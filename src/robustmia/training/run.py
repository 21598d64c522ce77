"""A run folder: what one training run leaves behind, and how to open it again.

```
RUN_DIR/
  config.json      the validated TrainConfig
  split.npz        members / non-members / pool indices (see robustmia.data.splits); or, for a model given its
                   members (a reference model), members.npz: the ids of the examples it trained on
  log.jsonl        one JSON record per finished epoch (no wall-clock time: a function of config, seed, threads)
  timing.jsonl     the seconds each epoch took
  checkpoint/      the latest complete checkpoint (see robustmia.training.checkpoint)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from robustmia.data.catalog import DatasetInfo, dataset_info
from robustmia.data.splits import Split, load_split
from robustmia.errors import UserError
from robustmia.io import read_json
from robustmia.training.checkpoint_files import META_FILE, checkpoint_dir
from robustmia.training.config import DEFAULT_EPOCHS, TrainConfig
from robustmia.validation import validate

# numerical libraries are imported where a model is built or data is loaded, so that a run folder
# is opened (and a bad one refused) without them

CONFIG_FILE, SPLIT_FILE, LOG_FILE, TIMING_FILE = "config.json", "split.npz", "log.jsonl", "timing.jsonl"
MEMBERS_FILE = "members.npz"  # a model trained on members it was given (a reference model): their example ids


def read_config_dict(run_dir: Path) -> Optional[dict[str, Any]]:
    """The stored config of a run as a plain dict, or None if the folder holds no run."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    data = read_json(path, f"the run folder is damaged: delete {run_dir} to train it again")
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a JSON object; the run folder is damaged: delete {run_dir} to train it again")
    return data


def _check_fingerprint(path: Path, config: TrainConfig, meta: dict[str, Any]) -> None:
    """The config the checkpoint was trained with (its meta.json) against config.json: what determines the weights
    must agree (training.config.identity), or the first field that differs is named."""
    try:
        trained = TrainConfig.model_validate(meta["config"])
    except Exception:
        raise UserError(f"{path}/checkpoint/meta.json does not hold a training config; the checkpoint is damaged: delete {path} "
                        "to train it again") from None
    now, then = config.identity(), trained.identity()
    changed = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
    if changed:
        key = changed[0]
        raise UserError(f"{path / CONFIG_FILE} says {key} = {now.get(key)!r}, but the run's checkpoint was trained with {key} = "
                        f"{then.get(key)!r}: the folder does not vouch for itself; restore its config.json, or train it again "
                        "into a new --out")


def run_finished(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` has a checkpoint at the end of its training (read from its meta.json alone)."""
    meta = Path(run_dir) / "checkpoint" / "meta.json"
    if not meta.is_file():
        return False
    recover = f"delete {run_dir} to train it again"
    m = read_json(meta, recover)
    try:
        config = TrainConfig.model_validate(m["config"])
        step, epoch = int(m["step"]), int(m["epoch"])
    except Exception:
        raise UserError(f"{meta} does not hold a checkpoint's config, step and epoch; {recover}") from None
    if config.iterations is not None:
        return step >= config.iterations
    return epoch >= (config.epochs or DEFAULT_EPOCHS)


def build_configured_model(config: TrainConfig, info: DatasetInfo) -> Any:
    """The network a config trains, as training and every later load build it: the zoo model, with a
    DP method's BatchNorm refused or replaced by GroupNorm (training.private)."""
    from robustmia.models import build_model
    from robustmia.training.private import private_model

    return private_model(build_model(config.model, info, config.model_args), config)


def build_initial_model(config: TrainConfig, info: DatasetInfo) -> Any:
    """The model at initialisation: the same weights for the same seed, whatever RNG state the caller has."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_configured_model(config, info)


def _checkpoint_meta(run_dir: Path) -> Optional[dict[str, Any]]:
    """The latest checkpoint's meta.json of a run (read without numerical libraries), or None before its first."""
    ckpt = checkpoint_dir(run_dir)
    if ckpt is None:
        return None
    meta = read_json(ckpt / META_FILE, "it is not valid JSON (damaged checkpoint); re-train or restore it")
    return meta if isinstance(meta, dict) else None


@dataclass
class Run:
    path: Path
    config: TrainConfig
    info: DatasetInfo
    split: Split
    trained: Optional[dict[str, Any]] = None  # where its checkpoint stands: epoch, step, of (epochs), finished

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        """A run folder, checked to vouch for itself: its config is the one its checkpoint was trained with (a config
        edited after training, e.g. to another number of canaries, is one line naming the field)."""
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"run folder {path} does not exist; pass the --out folder of `robustmia train`")
        data = read_config_dict(path)
        if data is None:
            raise UserError(f"{path} holds no run ({CONFIG_FILE} is missing); pass the --out folder of `robustmia train`")
        config = validate(TrainConfig, data, str(path / CONFIG_FILE))
        meta = _checkpoint_meta(path)
        trained = None
        if meta is not None:
            _check_fingerprint(path, config, meta)
            epochs = config.epochs or DEFAULT_EPOCHS
            trained = {"epoch": meta.get("epoch"), "step": meta.get("step"), "of": config.iterations or epochs,
                       "unit": "iterations" if config.iterations else "epochs", "finished": run_finished(path)}
        return cls(path, config, dataset_info(config.dataset, config.data_dir), load_split(path / SPLIT_FILE), trained)

    def check_idle(self) -> None:
        """Refuse a run that another process is training now (its checkpoint would change under the reader)."""
        from robustmia.locks import holder

        pid = holder(self.path)
        if pid is not None:
            raise UserError(f"{self.path} is being trained by another robustmia process (PID {pid}); wait for it to finish, "
                            "then run the same command again")

    def progress_warning(self) -> Optional[str]:
        """What to say of a run whose training has not finished (its latest checkpoint is what is read), or None."""
        t = self.trained
        if t is None or t["finished"]:
            return None
        done = t["step"] if t["unit"] == "iterations" else t["epoch"]
        return (f"{self.path} has not finished training: its checkpoint is at {done} of {t['of']} {t['unit']}, and that model is "
                f"what is read (continue it with robustmia train --out {self.path} --resume)")

    def data(self) -> tuple[Any, Any]:
        """``(members, test)``: the target's training set and the whole test split."""
        from robustmia.data.datasets import load_dataset

        train, test = load_dataset(self.config.dataset, self.config.data_dir)
        if (len(train), len(test)) != (self.split.n_train, self.split.n_test):
            raise UserError(
                f"{self.path / SPLIT_FILE} was made for {self.split.n_train}/{self.split.n_test} images, "
                f"but {self.config.dataset} now has {len(train)}/{len(test)}; point --data-dir at the original copy"
            )
        return train.subset(self.split.members), test

    def load_model(self, device: Any = "cpu") -> Any:
        return load_trained_model(self.path, self.config, self.info, device)


def load_trained_model(path: Path, config: TrainConfig, info: DatasetInfo, device: Any = "cpu") -> Any:
    """The model in a run folder's latest checkpoint, in eval mode on ``device``."""
    from robustmia.models.inference import resolve_device
    from robustmia.training.checkpoint import load_checkpoint, load_weights

    ckpt = checkpoint_dir(path)
    if ckpt is None:
        raise UserError(f"run {path} has no checkpoint yet; train it (or resume it with --resume) first")
    weights, _, _ = load_checkpoint(ckpt, with_optimizer=False)
    model = build_configured_model(config, info)
    load_weights(model, weights, ckpt)
    return model.to(resolve_device(device)).eval()
