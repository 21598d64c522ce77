"""Checkpoints: safetensors for tensors, JSON for everything else; nothing is unpickled.

A run folder holds its latest complete checkpoint in ``checkpoint/``:

- ``model.safetensors``: the model's state dict (weights and BatchNorm buffers);
- ``optimizer.safetensors``: the optimizer's tensor state (momentum buffers);
- ``meta.json``: config, seed, epoch, step, metrics, library versions, the optimizer's
  non-tensor state, and the SHA-256 of both tensor files.

A new checkpoint is written in full into ``.checkpoint-new/`` and then swapped in by
renames, so a kill at any moment leaves either the old or the new checkpoint whole. Models
trained together (a stack) checkpoint as a group (:func:`save_group`), so that a kill never
leaves some of them an epoch ahead of the others.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robustmia.errors import UserError
from robustmia.io import file_sha256, read_json, write_json

from robustmia.training.checkpoint_files import (  # noqa: F401  (their home; imported from here too)
    CURRENT, META_FILE, MODEL_FILE, NEW, OLD, OPTIM_FILE, checkpoint_dir,
)

COMMITTED = "committed"  # marks a new checkpoint of a group (stacked models) as part of a complete group


def library_versions() -> dict[str, str]:
    import robustmia

    return {
        "robustmia": robustmia.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _split_optimizer_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    skeleton: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for idx, entry in state["state"].items():
        skeleton["state"][str(idx)] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{key}"] = value.detach().cpu().contiguous()
                skeleton["state"][str(idx)][key] = {"tensor": f"{idx}.{key}"}
            else:
                skeleton["state"][str(idx)][key] = {"value": value}
    return tensors, skeleton


def _join_optimizer_state(tensors: dict[str, torch.Tensor], skeleton: dict) -> dict:
    state = {}
    for idx, entry in skeleton["state"].items():
        state[int(idx)] = {k: tensors[v["tensor"]] if "tensor" in v else v["value"] for k, v in entry.items()}
    return {"state": state, "param_groups": skeleton["param_groups"]}


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    write_new(run_dir, model, optimizer, meta)
    swap_in(run_dir)


def write_new(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    """Write a complete checkpoint into ``RUN/.checkpoint-new/`` (flushed to disk), not yet in use."""
    run_dir = Path(run_dir)
    new = run_dir / NEW
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(new / MODEL_FILE))
    optim_tensors, optim_skeleton = _split_optimizer_state(optimizer.state_dict())
    save_file(optim_tensors, str(new / OPTIM_FILE))
    meta = {
        **meta,
        "optimizer": optim_skeleton,
        "versions": library_versions(),
        "sha256": {MODEL_FILE: file_sha256(new / MODEL_FILE), OPTIM_FILE: file_sha256(new / OPTIM_FILE)},
    }
    write_json(new / META_FILE, meta)
    for name in (MODEL_FILE, OPTIM_FILE):
        with open(new / name, "rb") as f:
            os.fsync(f.fileno())
    _fsync_dir(new)


def swap_in(run_dir: Path) -> None:
    """Make ``.checkpoint-new/`` the checkpoint by renames: a kill at any moment leaves the old or the new one whole."""
    run_dir = Path(run_dir)
    new, cur, old = run_dir / NEW, run_dir / CURRENT, run_dir / OLD
    shutil.rmtree(old, ignore_errors=True)
    if cur.exists():
        os.rename(cur, old)
    os.rename(new, cur)
    _fsync_dir(run_dir)
    shutil.rmtree(old, ignore_errors=True)


def save_group(runs: list[tuple[Path, torch.nn.Module, torch.optim.Optimizer, dict]]) -> None:
    """Checkpoint models trained together (a stack) as one: every new checkpoint is written, then each is
    marked committed, then swapped in. A kill before the first mark leaves the group at its old epoch,
    after it at its new one, once :func:`recover_group` has run: never some models a step ahead."""
    for run_dir, model, optimizer, meta in runs:
        write_new(run_dir, model, optimizer, meta)
    for run_dir, *_ in runs:
        (Path(run_dir) / NEW / COMMITTED).touch()
        _fsync_dir(Path(run_dir) / NEW)
    for run_dir, *_ in runs:
        swap_in(run_dir)


def recover_group(run_dirs: list[Path]) -> None:
    """Finish, or undo, a group checkpoint that a kill interrupted (see :func:`save_group`)."""
    pending = [Path(d) for d in run_dirs if (Path(d) / NEW / META_FILE).is_file()]
    committed = any((d / NEW / COMMITTED).is_file() for d in pending)
    for d in pending:
        if committed:
            swap_in(d)
        else:
            shutil.rmtree(d / NEW, ignore_errors=True)


def read_safetensors(path: Path, expected_sha256: Optional[str] = None) -> dict[str, torch.Tensor]:
    """Load tensors from a safetensors file, refusing pickles and damaged files with one clear line."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = path.stat().st_size
    except OSError as e:
        raise UserError(f"cannot read checkpoint file {path}: {e.strerror}") from None
    # safetensors: an 8-byte little-endian header length, then the JSON header
    header_len = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    looks_safetensors = head[8:9] == b"{" and 0 < header_len <= size - 8
    if not looks_safetensors and (head[:1] == b"\x80" or head[:4] == b"PK\x03\x04"):
        raise UserError(
            f"{path} is a pickle (torch.save) file; robustmia never unpickles files: "
            "save the weights with safetensors.torch.save_file"
        )
    if expected_sha256 is not None and file_sha256(path) != expected_sha256:
        raise UserError(f"checkpoint file {path} is damaged or truncated (checksum mismatch); re-train or restore it")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"checkpoint file {path} is not a readable safetensors file ({e}); re-train or restore it") from None


def read_meta(ckpt: Path) -> dict:
    path = Path(ckpt) / META_FILE
    meta = read_json(path, "it is not valid JSON (damaged checkpoint); re-train or restore it")
    if not isinstance(meta, dict) or not {"config", "epoch", "step", "sha256"} <= meta.keys():
        raise UserError(f"{path} lacks the checkpoint metadata robustmia writes; it is not a robustmia checkpoint")
    types = {"config": dict, "epoch": int, "step": int, "sha256": dict, "metrics": dict, "optimizer": dict}
    for key, kind in types.items():
        value = meta.get(key, kind())
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            raise UserError(f"{path}: {key} is {value!r}, not {'a count' if kind is int else 'an object'}; the checkpoint is "
                            "damaged: re-train or restore it")
    if not all(isinstance(v, str) for v in meta["sha256"].values()):
        raise UserError(f"{path}: sha256 must name each file's checksum as text; the checkpoint is damaged: re-train or restore it")
    return meta


def load_checkpoint(ckpt: Path, with_optimizer: bool = True) -> tuple[dict[str, torch.Tensor], Optional[dict], dict]:
    """Return ``(model_state, optimizer_state, meta)`` of a checkpoint folder, verified
    (``optimizer_state`` is None unless ``with_optimizer``)."""
    ckpt = Path(ckpt)
    meta = read_meta(ckpt)
    weights = read_safetensors(ckpt / MODEL_FILE, meta["sha256"].get(MODEL_FILE))
    if not with_optimizer:
        return weights, None, meta
    optim_tensors = read_safetensors(ckpt / OPTIM_FILE, meta["sha256"].get(OPTIM_FILE))
    try:
        optim_state = _join_optimizer_state(optim_tensors, meta["optimizer"])
    except (KeyError, TypeError, AttributeError):
        raise UserError(f"{ckpt / META_FILE}: optimizer state does not match {OPTIM_FILE}; re-train") from None
    return weights, optim_state, meta


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    from robustmia.models.inference import nonfinite_tensor

    bad = nonfinite_tensor(weights)
    if bad is not None:
        raise UserError(f"{source}: {bad} holds NaN or infinite values: the training diverged; train it again with a "
                        "lower lr (into a new --out)")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:300]
        raise UserError(f"{source}: weights do not fit the configured model ({detail})") from None
