"""``fast-cnn``: a fast CIFAR-style network in the style of airbench (Jordan 2024) and hlb-CIFAR10.

- a frozen 2x2 patch-whitening convolution (``Whitening``): its filters are the eigenvectors of the
  covariance of the 2x2 patches of the model's own training images, scaled by 1/sqrt(eigenvalue +
  eps), each with its negative (24 channels on RGB); it is fitted once, before the first step, to
  the members of the run that trains it (``fit_to_members``), so a reference model fits its own;
  only its bias trains;
- then GELU, and one block per width: ``depth`` 3x3 convolutions (identity-initialised), the first
  followed by 2x2 max pooling, each by BatchNorm (no scale) and GELU;
- a global max pool and a linear head whose logits are scaled by ``scale`` (1/9);
- ``tta``: in eval mode the logits are the mean over the image and its mirror image, so every
  attack and evaluation sees what a deployed model answers (training sees one view).

Arguments (``model_args`` of a config, ``--arch-args``): ``widths`` (default 64, 256, 256),
``depth`` (convolutions per block, default 2), ``whiten`` (default true; false: a trainable 2x2
convolution instead, for DP-SGD, whose accountant does not count data-dependent layers), ``tta``
(default false), ``scale`` and ``whiten_eps`` (added to the eigenvalues; larger values amplify the
faint, high-frequency patch directions less, which adversarial training needs).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

WHITEN_EPS = 5e-4
PATCH = 2


class Whitening(nn.Module):
    """The frozen patch-whitening convolution; ``fit`` sets it from images (normalised as the model sees them)."""

    def __init__(self, channels: int, patch: int = PATCH, eps: float = WHITEN_EPS):
        super().__init__()
        width = 2 * channels * patch * patch
        self.register_buffer("weight", torch.zeros(width, channels, patch, patch))
        self.bias = nn.Parameter(torch.zeros(width))
        self.out_channels, self.eps = width, eps

    @torch.no_grad()
    def fit(self, images: torch.Tensor, eps: Optional[float] = None) -> None:
        eps = self.eps if eps is None else eps
        c, p = self.weight.shape[1], self.weight.shape[2]
        patches = images.unfold(2, p, 1).unfold(3, p, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * p * p).double()
        covariance = patches.T @ patches / len(patches)
        values, vectors = torch.linalg.eigh(covariance)
        values, vectors = values.flip(0), vectors.T.flip(0)  # largest first, as rows
        scaled = (vectors / torch.sqrt(values.clamp_min(0) + eps)[:, None]).reshape(c * p * p, c, p, p)
        self.weight.copy_(torch.cat([scaled, -scaled]).to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():  # identity-initialised: the first min(c_in, c_out) filters pass their channel through
        k = min(c_in, c_out)
        conv.weight[:k] = 0
        torch.nn.init.dirac_(conv.weight[:k])
    return conv


def _norm(c: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(c, momentum=0.4, eps=1e-12)
    norm.weight.requires_grad_(False)  # no scale, as in airbench: only the shift trains
    return norm


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, depth: int):
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(_conv(c_in if i == 0 else c_out, c_out))
            if i == 0:
                layers.append(nn.MaxPool2d(2))
            layers += [_norm(c_out), nn.GELU()]
        super().__init__(*layers)


class FastCNN(nn.Module):
    def __init__(self, channels: int, num_classes: int, widths: Sequence[int] = (64, 256, 256), depth: int = 2,
                 whiten: bool = True, tta: bool = False, scale: float = 1 / 9, whiten_eps: float = WHITEN_EPS):
        super().__init__()
        self.whiten = Whitening(channels, eps=whiten_eps) if whiten else nn.Conv2d(channels, 2 * channels * PATCH * PATCH, PATCH)
        width = 2 * channels * PATCH * PATCH
        blocks = []
        for w in widths:
            blocks.append(_Block(width, int(w), depth))
            width = int(w)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, num_classes, bias=False)
        self.scale, self.tta = scale, tta

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        z = self.blocks(F.gelu(self.whiten(x)))
        return self.head(torch.amax(z, dim=(2, 3))) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tta and not self.training:
            return (self._logits(x) + self._logits(x.flip(3))) / 2
        return self._logits(x)


def fast_cnn(c: int, h: int, w: int, num_classes: int, widths: Sequence[int] = (64, 256, 256), depth: int = 2,
             whiten: bool = True, tta: bool = False, scale: float = 1 / 9, whiten_eps: float = WHITEN_EPS) -> nn.Module:
    if not widths or depth < 1 or any(int(v) < 1 for v in widths):
        raise ValueError("fast-cnn needs at least one width, each >= 1, and depth >= 1")
    need = 2 ** len(widths) + PATCH - 1
    if min(h, w) < need:
        raise ValueError(f"fast-cnn with {len(widths)} blocks needs images of at least {need}x{need} (got {h}x{w}); give fewer widths")
    return FastCNN(c, num_classes, widths, depth, whiten, tta, scale, whiten_eps)


@torch.no_grad()
def fit_to_members(model: nn.Module, images: torch.Tensor, most: int = 5000) -> bool:
    """Fit every data-dependent layer of ``model`` (a ``Whitening``) to the training ``images`` (pixels in
    [0, 1], at most ``most`` of them, in order), seen as the layer sees them (after the layers before
    it, e.g. the model's normalisation). Returns whether there was any such layer."""
    layers = [m for m in model.modules() if isinstance(m, Whitening)]
    for layer in layers:
        seen: list[torch.Tensor] = []

        def capture(_module, args):  # the layer's input is all that is needed: stop the forward pass there
            seen.append(args[0].detach())
            raise _Stop

        hook = layer.register_forward_pre_hook(capture)
        was = model.training
        model.eval()
        try:
            device = layer.weight.device
            for i in range(0, min(len(images), most), 500):
                try:
                    model(images[i:min(i + 500, most)].to(device))
                except _Stop:
                    pass
        finally:
            hook.remove()
            model.train(was)
        layer.fit(torch.cat(seen))
    return bool(layers)


class _Stop(Exception):
    """Ends a forward pass once the layer being fitted has seen its input."""
