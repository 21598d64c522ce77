"""Small networks for CPU-scale work.

- ``small-cnn``: conv32-pool-conv64-pool-conv128-pool-fc256-fc10 (3x3 convolutions,
  2x2 max pooling); 0.62M parameters on 32x32x3 inputs.
- ``digits-cnn``: conv32-conv64-pool-fc128-fc10 for 8x8 digits.
- ``digits-mlp``: two hidden layers of 256 units.
"""

from __future__ import annotations

from torch import nn


def small_cnn(c: int, h: int, w: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * (h // 8) * (w // 8), 256), nn.ReLU(),
        nn.Linear(256, num_classes),
    )


def digits_cnn(c: int, h: int, w: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (h // 2) * (w // 2), 128), nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def digits_mlp(c: int, h: int, w: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(c * h * w, 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, num_classes),
    )
