"""Running a model for its outputs: which device, eval mode, all logits batch by batch.

Shared by training, evaluation and the membership signals, so none of them imports another
for these."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator

import torch
from torch import nn

from robustmia.errors import UserError


def resolve_device(device: "str | torch.device" = "auto") -> torch.device:
    """``auto`` (the GPU if there is one), ``cpu``, ``cuda`` or ``cuda:N``, checked; a torch.device as it is. Names cross
    process boundaries (a study's worker resolves ``auto`` on its own machine); within a process, one torch.device."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but this machine has no CUDA GPU; use --device cpu")
    return dev


def device_name(device: torch.device) -> str:
    """What the device is, in words: the GPU's name, or the CPU's model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"CPU ({model})"


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (BatchNorm on running statistics) for the block; the mode found is restored."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@torch.no_grad()
def logits_of(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """All logits of ``images`` (on the CPU, float32), computed in eval mode, batch by batch."""
    device = model_device(model)
    with eval_mode(model):
        return torch.cat([model(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)])


def nonfinite_tensor(state: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor of ``state`` holding a NaN or an infinity, or None."""
    return next((k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)


def state_sha256(model: nn.Module) -> str:
    """SHA-256 over a model's state dict (names, shapes, dtypes and bytes, in order)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()
