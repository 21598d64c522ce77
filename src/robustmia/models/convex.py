"""The certifiable networks of Wong et al. (2018), built from Conv2d, Linear, ReLU and
residual additions only (no BatchNorm, no pooling), so their outputs can be bounded.

- ``wong-cnn``: the 4-layer CNN: conv16 4x4 stride 2, conv32 4x4 stride 2, fc100, fc10.
- ``wong-resnet``: the small residual network of ``cifar_model_resnet(N=1, factor=1)`` in
  convex_adversarial's examples, which the paper calls WRN-10-1: a 16-filter 3x3
  convolution, then residual blocks with 16, 16, 32 and 64 filters (the last two
  downsampling with 4x4 stride-2 convolutions and 2x2 stride-2 skips), then fc1000, fc10.
"""

from __future__ import annotations

from torch import nn

from robustmia.models.layers import Residual


def wong_cnn(c: int, h: int, w: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * (h // 4) * (w // 4), 100), nn.ReLU(),
        nn.Linear(100, num_classes),
    )


def _block(c_in: int, c_out: int, downsample: bool) -> list[nn.Module]:
    if downsample:
        first = nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)
        skip = nn.Conv2d(c_in, c_out, 2, stride=2)
    else:
        first = nn.Conv2d(c_in, c_out, 3, stride=1, padding=1)
        skip = nn.Conv2d(c_in, c_out, 1)
    return [Residual(first, skip, nn.Conv2d(c_out, c_out, 3, padding=1)), nn.ReLU()]


def wong_resnet(c: int, h: int, w: int, num_classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(c, 16, 3, padding=1), nn.ReLU()]
    layers += _block(16, 16, False) + _block(16, 16, False)
    layers += _block(16, 32, True) + _block(32, 64, True)
    layers += [
        nn.Flatten(), nn.ReLU(),
        nn.Linear(64 * (h // 4) * (w // 4), 1000), nn.ReLU(),
        nn.Linear(1000, num_classes),
    ]
    return nn.Sequential(*layers)
