"""Wide residual networks (Zagoruyko & Komodakis), as Madry et al. used them.

WRN-D-K has an initial 16-filter convolution, then three groups of (D - 4) / 6
pre-activation residual blocks with 16K, 32K and 64K filters (strides 1, 2, 2), then
BatchNorm, ReLU, global average pooling and a linear layer. WRN-34-10 (filters
16/160/320/640, 5 blocks a group) is the paper's CIFAR-10 model, WRN-34-4
(16/64/128/256) its SVHN model.
"""

from __future__ import annotations

from torch import nn


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.shortcut = None if c_in == c_out and stride == 1 else nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x):
        pre = (self.bn1(x)).relu()
        # as in Madry's and TRADES' WRN: a projected shortcut starts from the activated input
        identity = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv2(self.bn2(self.conv1(pre)).relu())
        return identity + out


class WideResNet(nn.Module):
    def __init__(self, depth: int, width: int, in_channels: int, num_classes: int):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4 with n >= 1, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)]
        for group, stride in zip(range(3), (1, 2, 2)):
            for i in range(n):
                layers.append(_Block(widths[group] if i == 0 else widths[group + 1], widths[group + 1], stride if i == 0 else 1))
        layers += [nn.BatchNorm2d(widths[3]), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.fc(self.features(x))


def wide_resnet(c: int, h: int, w: int, num_classes: int, depth: int = 16, width: int = 4) -> nn.Module:
    """The builder of ``wrn-D-K`` (models.names): WRN-``depth``-``width`` for ``c``-channel inputs."""
    return WideResNet(depth, width, c, num_classes)
