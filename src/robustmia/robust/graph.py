"""A certifiable network as a graph of affine maps and ReLUs, for bound propagation.

:func:`to_graph` walks a model built from Normalize, Linear, Conv2d, Flatten, ReLU,
BatchNorm in eval mode (an affine map then) and :class:`Residual` blocks, and returns its
nodes in topological order: node 0 is the input, each affine node sums linear maps of one
or more earlier nodes plus a bias, each ReLU node applies to one earlier node. Any other
layer (max pooling, BatchNorm in training mode, ...) is refused with a clear message
naming it, before any work starts.

Each linear map offers what bound propagation needs: ``forward`` (without bias),
``forward_abs`` (with |W|, for interval radii) and ``transpose`` (Lambda -> Lambda W,
mapping a batch of backward coefficients on its output to its input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from robustmia.errors import UserError
from robustmia.models.layers import Normalize, Residual


DENSE_LIMIT = 1 << 18  # small convolutions (in x out entries) are transposed as one matrix product


def numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


class LinearMap:
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, *in) -> (B, *out)
        raise NotImplementedError

    def forward_abs(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def transpose(self, lam: torch.Tensor) -> torch.Tensor:  # (B, S, *out) -> (B, S, *in)
        raise NotImplementedError

    def cost(self) -> int:
        """Multiply-adds per vector it maps (forward or transposed): what bound propagation pays."""
        raise NotImplementedError


class DenseMap(LinearMap):
    def __init__(self, weight: torch.Tensor, in_shape, out_shape):
        self.weight, self.in_shape, self.out_shape = weight, in_shape, out_shape

    def forward(self, x):
        return x @ self.weight.t()

    def forward_abs(self, x):
        return x @ self.weight.abs().t()

    def transpose(self, lam):
        return lam @ self.weight

    def cost(self):
        return self.weight.numel()


class ConvMap(LinearMap):
    def __init__(self, conv: nn.Conv2d, in_shape, out_shape):
        self.weight = conv.weight
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self.in_shape, self.out_shape = in_shape, out_shape
        k = self.weight.shape[-2:]
        self.output_padding = tuple(
            in_shape[1 + i] - ((out_shape[1 + i] - 1) * self.stride[i] - 2 * self.padding[i] + self.dilation[i] * (k[i] - 1) + 1)
            for i in range(2)
        )

    def _conv(self, x, w):
        return F.conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, x):
        return self._conv(x, self.weight)

    def forward_abs(self, x):
        return self._conv(x, self.weight.abs())

    def _dense(self) -> Optional[torch.Tensor]:
        """The convolution as an (out, in) matrix, when small enough: one matrix product then
        beats conv_transpose2d over a batch of many small coefficient maps."""
        n_in, n_out = numel(self.in_shape), numel(self.out_shape)
        if n_in * n_out > DENSE_LIMIT:
            return None
        if getattr(self, "_matrix", None) is None:
            basis = torch.eye(n_in, device=self.weight.device, dtype=self.weight.dtype).view(n_in, *self.in_shape)
            self._matrix = self._conv(basis, self.weight).reshape(n_in, n_out).t()
        return self._matrix

    def transpose(self, lam):
        b, s = lam.shape[:2]
        dense = self._dense()
        if dense is not None:
            return (lam.reshape(b, s, -1) @ dense).view(b, s, *self.in_shape)
        out = F.conv_transpose2d(lam.reshape(b * s, *self.out_shape), self.weight, None, self.stride, self.padding,
                                 self.output_padding, self.groups, self.dilation)
        return out.view(b, s, *self.in_shape)

    def cost(self):
        n_in, n_out = numel(self.in_shape), numel(self.out_shape)
        return n_in * n_out if n_in * n_out <= DENSE_LIMIT else numel(self.out_shape) * self.weight[0].numel()


class ScaleMap(LinearMap):
    """Per-channel scaling (normalisation, eval-mode BatchNorm)."""

    def __init__(self, scale: torch.Tensor, shape):
        self.scale = scale.view(-1, *([1] * (len(shape) - 1)))  # (C, 1, 1) or (C,)
        self.in_shape = self.out_shape = shape

    def forward(self, x):
        return x * self.scale

    def forward_abs(self, x):
        return x * self.scale.abs()

    def transpose(self, lam):
        return lam * self.scale

    def cost(self):
        return numel(self.in_shape)


class ReshapeMap(LinearMap):
    def __init__(self, in_shape, out_shape):
        self.in_shape, self.out_shape = in_shape, out_shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.out_shape)

    forward_abs = forward

    def transpose(self, lam):
        return lam.reshape(*lam.shape[:2], *self.in_shape)

    def cost(self):
        return 0


@dataclass
class Node:
    kind: str  # "input", "affine" or "relu"
    shape: tuple[int, ...]
    inputs: list[int] = field(default_factory=list)
    maps: list[LinearMap] = field(default_factory=list)
    bias: Optional[torch.Tensor] = None  # broadcastable to (B, *shape)


SUPPORTED = "Normalize, Linear, Conv2d, Flatten, ReLU, Residual, Identity, BatchNorm (eval mode only)"


class _Builder:
    def __init__(self, in_shape, allow_batchnorm: bool):
        self.nodes = [Node("input", tuple(in_shape))]
        self.allow_batchnorm = allow_batchnorm

    def affine(self, inputs, maps, bias, shape) -> int:
        self.nodes.append(Node("affine", tuple(shape), list(inputs), list(maps), bias))
        return len(self.nodes) - 1

    def layer(self, module: nn.Module, src: int, name: str) -> int:
        shape = self.nodes[src].shape
        if isinstance(module, nn.Sequential):
            for child_name, child in module.named_children():
                src = self.layer(child, src, f"{name}.{child_name}" if name else child_name)
            return src
        if isinstance(module, nn.Identity):
            return src
        if isinstance(module, nn.ReLU):
            self.nodes.append(Node("relu", shape, [src]))
            return len(self.nodes) - 1
        if isinstance(module, Residual):
            first = self.single(module.first, src, f"{name}.first")
            act = self.layer(nn.ReLU(), first, name)
            skip_map, skip_bias, out_shape = self.single_map(module.skip, self.nodes[src].shape, f"{name}.skip")
            second_map, second_bias, out2 = self.single_map(module.second, self.nodes[act].shape, f"{name}.second")
            if out_shape != out2:
                raise UserError(f"cannot certify: residual block {name} adds tensors of shapes {out_shape} and {out2}")
            return self.affine([src, act], [skip_map, second_map], _add(skip_bias, second_bias), out_shape)
        m, bias, out_shape = self.single_map(module, shape, name)
        return self.affine([src], [m], bias, out_shape)

    def single(self, module, src, name) -> int:
        m, bias, out_shape = self.single_map(module, self.nodes[src].shape, name)
        return self.affine([src], [m], bias, out_shape)

    def single_map(self, module: nn.Module, shape, name: str):
        if isinstance(module, nn.Linear):
            if len(shape) != 1:
                raise UserError(f"cannot certify: Linear layer {name} gets an unflattened input of shape {shape}")
            out = (module.out_features,)
            return DenseMap(module.weight, shape, out), module.bias, out
        if isinstance(module, nn.Conv2d):
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                raise UserError(f"cannot certify: Conv2d layer {name} must use explicit zero padding")
            with torch.no_grad():
                out = tuple(module(torch.zeros(1, *shape, device=module.weight.device)).shape[1:])
            bias = None if module.bias is None else module.bias.view(-1, 1, 1)
            return ConvMap(module, shape, out), bias, out
        if isinstance(module, nn.Flatten):
            if module.start_dim != 1 or module.end_dim != -1:
                raise UserError(f"cannot certify: Flatten layer {name} must flatten from dimension 1")
            out = (numel(shape),)
            return ReshapeMap(shape, out), None, out
        if isinstance(module, Normalize):
            scale = 1.0 / module.std.flatten()
            return ScaleMap(scale, shape), (-module.mean.flatten() * scale).view(-1, *([1] * (len(shape) - 1))), shape
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if module.training or not self.allow_batchnorm or not module.track_running_stats:
                raise UserError(f"cannot certify: BatchNorm layer {name} in training mode (use a BatchNorm-free model such as wong-cnn)")
            scale = module.weight / torch.sqrt(module.running_var + module.eps) if module.affine else 1 / torch.sqrt(module.running_var + module.eps)
            shift = (module.bias if module.affine else 0) - module.running_mean * scale
            return ScaleMap(scale, shape), shift.view(-1, *([1] * (len(shape) - 1))), shape
        raise UserError(f"cannot certify: layer {name or 'model'} is a {type(module).__name__}; supported layers: {SUPPORTED}")


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def to_graph(model: nn.Module, in_shape: tuple[int, ...], allow_batchnorm: bool = True) -> list[Node]:
    builder = _Builder(in_shape, allow_batchnorm)
    builder.layer(model, 0, "")
    return builder.nodes


def is_certifiable(model: nn.Module, in_shape: tuple[int, ...]) -> bool:
    try:
        to_graph(model, in_shape)
    except UserError:
        return False
    return True
