"""Layers shared by the architectures: the in-model normalisation and a residual block
written as plain Linear/Conv/ReLU pieces, so bound propagation can walk through it."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """(x - mean) / std per channel. Every model starts with one: inputs are pixels in [0, 1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Residual(nn.Module):
    """``skip(x) + second(relu(first(x)))``: the block of Wong et al.'s certifiable ResNet
    (their ``Dense`` layer over the last three outputs), without BatchNorm."""

    def __init__(self, first: nn.Module, skip: nn.Module, second: nn.Module):
        super().__init__()
        self.first, self.skip, self.second = first, skip, second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.second(torch.relu(self.first(x)))
