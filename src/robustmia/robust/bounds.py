"""Certified lower bounds on logit margins over an L-infinity ball clipped to [0, 1].

For a model (see :mod:`robustmia.robust.graph` for the layers it may hold), inputs ``x``,
labels ``y`` and radius ``eps``, :func:`margin_bounds` returns a (B, K) tensor whose entry
(b, j) is a lower bound on f_y(x') - f_j(x') over every x' with |x' - x|_inf <= eps and
0 <= x' <= 1 (and 0 at j = y). Methods:

- ``ibp``: interval bound propagation (Gowal et al. 2018); the last layer is merged with
  the margin specification, as is usual;
- ``wong-kolter``: the dual of the convex outer adversarial polytope (Wong & Kolter 2018),
  i.e. linear bounds propagated backwards with each unstable ReLU relaxed to its triangle,
  lower and upper line of slope u / (u - l); intermediate bounds computed the same way,
  layer by layer, exactly (no random projection). It equals convex_adversarial's
  ``DualNetwork`` bound with ``bounded_input=True``;
- ``crown``: the same backward propagation with CROWN's adaptive lower slopes (1 if u > -l
  else 0), intermediate bounds also by CROWN and intersected with IBP's, and the final
  bound never below IBP's (both are sound, so their maximum is);
- ``crown-ibp``: intermediate bounds by IBP, the final layer by CROWN (Zhang et al. 2020).

Everything is differentiable, so the bounds serve as training objectives too.
"""

from __future__ import annotations

from typing import Callable, Literal, Optional

import torch
from torch import nn

from robustmia.robust.bound_names import BOUNDS, check_bound  # noqa: F401  (re-exported)
from robustmia.robust.graph import ConvMap, DenseMap, Node, numel, to_graph
from robustmia.seeding import generator_draw

Bound = Literal["ibp", "wong-kolter", "crown", "crown-ibp"]
BOUND_NAMES: tuple[str, ...] = tuple(BOUNDS)
Bounds = dict[int, tuple[torch.Tensor, torch.Tensor]]

# budget for one backward pass of intermediate bounds: batch x specs x largest node (floats)
CHUNK_FLOATS = 1 << 25


def input_box(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    return (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)


def margin_spec(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, K, K): row j is e_y - e_j."""
    eye = torch.eye(num_classes, device=y.device)
    return eye[y].unsqueeze(1) - eye.unsqueeze(0)


def _interval(node: Node, bounds: Bounds) -> tuple[torch.Tensor, torch.Tensor]:
    if node.kind == "relu":
        l, u = bounds[node.inputs[0]]
        return l.clamp(min=0), u.clamp(min=0)
    mid = rad = 0
    for i, m in zip(node.inputs, node.maps):
        l, u = bounds[i]
        mid = mid + m.forward((u + l) / 2)
        rad = rad + m.forward_abs((u - l) / 2)
    if node.bias is not None:
        mid = mid + node.bias
    return mid - rad, mid + rad


def ibp_bounds(nodes: list[Node], x_l: torch.Tensor, x_u: torch.Tensor, upto: Optional[int] = None) -> Bounds:
    bounds: Bounds = {0: (x_l, x_u)}
    for k in range(1, (upto if upto is not None else len(nodes) - 1) + 1):
        bounds[k] = _interval(nodes[k], bounds)
    return bounds


def _relu_lines(l: torch.Tensor, u: torch.Tensor, relaxation: str):
    """(lower slope, upper slope, upper intercept) of each ReLU's linear relaxation."""
    active, unstable = l >= 0, (l < 0) & (u > 0)
    d = torch.where(unstable, u / (u - l).clamp_min(1e-12), active.to(l.dtype))
    intercept = torch.where(unstable, -d * l, torch.zeros_like(l))
    if relaxation == "wong-kolter":
        lower = d
    else:
        lower = torch.where(unstable, (u > -l).to(l.dtype), active.to(l.dtype))
    return lower, d, intercept


def _dot(lam: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sum over the node's dimensions of lam * v: lam (B|1, S, *shape), v (B|1, *shape) -> (B, S)."""
    lam_f = lam.flatten(2)
    v_f = v.expand(v.shape[0], *lam.shape[2:]).reshape(v.shape[0], -1, 1) if v.dim() > 1 else v.view(1, -1, 1)
    return torch.matmul(lam_f, v_f).squeeze(-1)


def _full(t: torch.Tensor, shape) -> torch.Tensor:
    """A bias (C, 1, 1), (C,) or (B, *shape) as (B|1, *shape)."""
    return t.expand(*shape).unsqueeze(0) if t.dim() == len(shape) else t


def backward_bound(
    nodes: list[Node], out: int, lam0: torch.Tensor, bounds: Bounds, relaxation: str, upper: bool = False
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Lower bound of lam0 . z_out (B, S) by backward linear propagation to the input box in
    ``bounds[0]``; with ``upper`` and the symmetric Wong-Kolter relaxation, also the upper
    bound of the same linear functions, from the same pass. ``lam0`` may have batch size 1:
    it is widened to the batch only where a ReLU's relaxation differs per example."""
    lams: dict[int, torch.Tensor] = {out: lam0}
    common = lo = hi = 0  # bias terms (shared), ReLU intercept terms of the lower / upper bound
    for k in range(out, 0, -1):
        lam = lams.pop(k, None)
        if lam is None:
            continue
        node = nodes[k]
        if node.kind == "affine":
            if node.bias is not None:
                common = common + _dot(lam, _full(node.bias, node.shape))
            for i, m in zip(node.inputs, node.maps):
                t = m.transpose(lam)
                lams[i] = lams[i] + t if i in lams else t
            continue
        l, u = bounds[node.inputs[0]]
        lower, slope, icpt = _relu_lines(l, u, relaxation)
        if relaxation == "wong-kolter":
            # lower and upper lines share the slope: only the intercept term depends on signs
            total, absolute = _dot(lam, icpt), _dot(lam.abs(), icpt)
            lo = lo + (total - absolute) / 2
            hi = hi + (total + absolute) / 2
            t = lam * slope.unsqueeze(1)
        else:
            neg = lam.clamp(max=0)
            lo = lo + _dot(neg, icpt)
            t = lam.clamp(min=0) * lower.unsqueeze(1) + neg * slope.unsqueeze(1)
        i = node.inputs[0]
        lams[i] = lams[i] + t if i in lams else t
    lo, hi = common + lo, common + hi
    lam = lams.get(0)
    if lam is not None:
        x_l, x_u = bounds[0]
        centre, radius = _dot(lam, (x_u + x_l) / 2), _dot(lam.abs(), (x_u - x_l) / 2)
        lo, hi = lo + centre - radius, hi + centre + radius
    return lo, (hi if upper else None)


def _node_bounds(nodes: list[Node], k: int, bounds: Bounds, relaxation: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of every neuron of node k by backward propagation with identity specifications."""
    x_l = bounds[0][0]
    batch, shape = x_l.shape[0], nodes[k].shape
    n = numel(shape)
    widest = max(numel(nd.shape) for nd in nodes[: k + 1])
    chunk = max(1, CHUNK_FLOATS // max(1, batch * widest))
    eye = torch.eye(n, device=x_l.device, dtype=x_l.dtype)
    lows, highs = [], []
    for s in range(0, n, chunk):
        # batch dimension 1: until the first ReLU the coefficients are the same for every
        # example, and broadcasting widens them only there
        lam = eye[s : s + chunk].view(1, -1, *shape)
        if relaxation == "wong-kolter":
            lo, hi = backward_bound(nodes, k, lam, bounds, relaxation, upper=True)
        else:
            lo, _ = backward_bound(nodes, k, lam, bounds, relaxation)
            neg_lo, _ = backward_bound(nodes, k, -lam, bounds, relaxation)
            hi = -neg_lo
        lows.append(lo)
        highs.append(hi)
    return torch.cat(lows, 1).view(batch, *shape), torch.cat(highs, 1).view(batch, *shape)


def _pre_relu_nodes(nodes: list[Node]) -> set[int]:
    return {n.inputs[0] for n in nodes if n.kind == "relu"}


def _interval_is_exact(nodes: list[Node], k: int) -> bool:
    """True if node k is an affine function of the input through a chain with at most one
    non-diagonal map: then interval arithmetic gives its exact bounds over the box, and the
    identity-specification pass (the costliest, on the widest layer) can be skipped."""
    dense = 0
    while k != 0:
        node = nodes[k]
        if node.kind != "affine" or len(node.inputs) != 1:
            return False
        dense += isinstance(node.maps[0], (DenseMap, ConvMap))
        k = node.inputs[0]
    return dense <= 1


def linear_bounds(nodes: list[Node], ibp: Bounds, relaxation: str, tighten_with_ibp: bool) -> Bounds:
    """Bounds of every ReLU input by backward propagation, layer by layer, given the IBP bounds
    ``ibp`` (exact on the first affine block, and intersected with the result if asked).
    Wong-Kolter bounds are computed forward instead where that is cheaper (the same numbers)."""
    if relaxation == "wong-kolter" and not tighten_with_ibp and _forward_is_cheaper(nodes, ibp):
        return exact_forward_bounds(nodes, *ibp[0])
    bounds: Bounds = {0: ibp[0]}
    need = _pre_relu_nodes(nodes)
    for k in range(1, len(nodes) - 1):
        if k in need:
            if _interval_is_exact(nodes, k):
                bounds[k] = ibp[k]
                continue
            l, u = _node_bounds(nodes, k, bounds, relaxation)
            if tighten_with_ibp:
                l, u = torch.maximum(l, ibp[k][0]), torch.minimum(u, ibp[k][1])
            bounds[k] = (l, u)
    return bounds


def _forward_map(node: Node, vals: dict[int, torch.Tensor], bias: bool) -> Optional[torch.Tensor]:
    """An affine node applied to column values (B, R, *shape) of its inputs (absent inputs count as 0)."""
    out = None
    for i, m in zip(node.inputs, node.maps):
        v = vals.get(i)
        if v is None:
            continue
        b, r = v.shape[:2]
        t = m.forward(v.reshape(b * r, *v.shape[2:]))
        t = t.view(b, r, *t.shape[1:])
        out = t if out is None else out + t
    if bias and node.bias is not None and out is not None:
        out = out + node.bias
    return out


Columns = Callable[[torch.Tensor], Optional[torch.Tensor]]  # half-widths (B, *shape) -> columns (B, R, *shape)
Spread = Callable[[torch.Tensor], torch.Tensor]  # columns mapped to a node (B, R, *shape) -> (B, *shape)


def forward_bounds(nodes: list[Node], x_l: torch.Tensor, x_u: torch.Tensor, columns: Columns, spread: Spread) -> Bounds:
    """Wong-Kolter bounds of every ReLU input by forward propagation. With each unstable ReLU
    relaxed to z -> d z + [0, icpt] (d = u / (u - l), the dual's parallel lines), every node
    is an affine function of the input box and of the intercept boxes, so its bounds are (the
    relaxed network's value at the boxes' centres, every ReLU adding icpt / 2) -/+ (sum of
    |coefficient| x half-width over the input and over every ReLU's intercepts). The
    half-widths enter as ``columns`` pushed forward through the relaxed network, once for all
    later layers, and ``spread`` turns a node's columns into that sum: exactly with identity
    columns (:func:`exact_forward_bounds`, the way convex_adversarial computes it), or
    estimated with random projections (:func:`projected_bounds`)."""
    centre, radius = (x_u + x_l) / 2, (x_u - x_l) / 2
    need = _pre_relu_nodes(nodes)
    last_use = {i: k for k, nd in enumerate(nodes) for i in nd.inputs}
    # streams: (values per node, whether biases and icpt / 2 are added); the first is the centre
    streams: list[tuple[dict[int, torch.Tensor], bool]] = [({0: centre.unsqueeze(1)}, True)]

    def add_stream(k: int, half_width: torch.Tensor) -> None:
        cols = columns(half_width)
        if cols is not None:
            streams.append(({k: cols}, False))

    add_stream(0, radius)
    bounds: Bounds = {0: (x_l, x_u)}
    for k in range(1, len(nodes) - 1):
        node = nodes[k]
        if node.kind == "relu":
            l, u = bounds[node.inputs[0]]
            _, d, icpt = _relu_lines(l, u, "wong-kolter")
            for vals, with_bias in streams:
                prev = vals.get(node.inputs[0])
                if prev is not None:
                    vals[k] = prev * d.unsqueeze(1) + ((icpt / 2).unsqueeze(1) if with_bias else 0)
            add_stream(k, icpt / 2)  # this ReLU's own intercept terms
        else:
            for vals, with_bias in streams:
                v = _forward_map(node, vals, with_bias)
                if v is not None:
                    vals[k] = v
        if k in need:
            mid = streams[0][0][k].squeeze(1)
            width = sum(spread(vals[k]) for vals, _ in streams[1:] if k in vals)
            bounds[k] = (mid - width, mid + width)
        for vals, _ in streams:  # free what no later node reads
            for i in [i for i in vals if last_use.get(i, -1) <= k and i != k]:
                del vals[i]
    return bounds


def identity_columns(half_width: torch.Tensor) -> Optional[torch.Tensor]:
    """Each example's own identity columns (e_i x half-width_i) for its nonzero coordinates,
    as many as the example with the most of them has (zero columns pad the others); None if
    all are zero. Per example, not the union over the batch: an unstable ReLU is rare in any
    one example (8 of 256 in the first layer of the digits CNN) but common in some example."""
    flat = half_width.flatten(1)
    nonzero = flat != 0
    m = int(nonzero.sum(1).max())
    if m == 0:
        return None
    idx = torch.argsort(nonzero.to(torch.uint8), dim=1, descending=True, stable=True)[:, :m]  # (B, m)
    vals = flat.gather(1, idx) * nonzero.gather(1, idx)
    cols = torch.zeros(flat.shape[0], m, flat.shape[1], device=flat.device, dtype=flat.dtype)
    return cols.scatter(2, idx.unsqueeze(-1), vals.unsqueeze(-1)).view(flat.shape[0], m, *half_width.shape[1:])


def exact_forward_bounds(nodes: list[Node], x_l: torch.Tensor, x_u: torch.Tensor) -> Bounds:
    """The exact Wong-Kolter bounds (those of :func:`linear_bounds`), computed forward."""
    return forward_bounds(nodes, x_l, x_u, identity_columns, lambda cols: cols.abs().sum(1))


def projected_bounds(nodes: list[Node], x_l: torch.Tensor, x_u: torch.Tensor, projections: int,
                     generator: Optional[torch.Generator] = None) -> Bounds:
    """Estimated Wong-Kolter bounds of every ReLU input, with random Cauchy projections
    (Wong, Schmidt, Metzen & Kolter 2018), for training at scale: each sum of absolute values
    is estimated as the median of |row . c| over ``projections`` Cauchy vectors c. Estimates,
    not certificates: evaluate with an exact method."""

    draw = generator_draw(generator)

    def cauchy(scale: torch.Tensor) -> torch.Tensor:
        u = draw(torch.rand, (scale.shape[0], projections, *scale.shape[1:]), scale.device)
        return torch.tan(torch.pi * (u - 0.5)) * scale.unsqueeze(1)

    return forward_bounds(nodes, x_l, x_u, cauchy, lambda cols: cols.abs().median(dim=1).values)


def _forward_is_cheaper(nodes: list[Node], ibp: Bounds) -> bool:
    """Whether exact forward propagation costs fewer multiply-adds than the backward one:
    forward pushes one column per input coordinate and per unstable ReLU (counted on IBP's
    bounds, for the example with the most) through the layers after it; backward pulls one row per neuron
    of each bounded node back to the input. Small inputs favour forward (8x8 digits), large
    ones backward (32x32x3: 3,072 input columns)."""
    cost = [sum(m.cost() for m in nd.maps) if nd.kind == "affine" else 0 for nd in nodes]
    need = sorted(k for k in _pre_relu_nodes(nodes) if not _interval_is_exact(nodes, k))
    if not need:
        return False
    last = need[-1]
    backward = sum(numel(nodes[k].shape) * sum(cost[: k + 1]) for k in need)
    columns = numel(nodes[0].shape)
    forward = columns * sum(cost[: last + 1])
    for k, nd in enumerate(nodes[: last + 1]):
        if nd.kind == "relu":
            l, u = ibp[nd.inputs[0]]
            unstable = int(((l < 0) & (u > 0)).flatten(1).sum(1).max())  # columns per example (identity_columns)
            forward += unstable * sum(cost[k + 1 : last + 1])
            columns += unstable
    # forward holds all columns at once (backward works in chunks): keep it within the same budget
    fits = ibp[0][0].shape[0] * columns * max(numel(nd.shape) for nd in nodes) <= CHUNK_FLOATS
    return fits and forward < backward


def graph_margin_bounds(nodes: list[Node], x: torch.Tensor, y: torch.Tensor, eps: float, bound: str,
                        projections: Optional[int] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    if bound not in BOUND_NAMES:
        raise ValueError(f"unknown bound bound {bound!r}; choose from {BOUND_NAMES}")
    x_l, x_u = input_box(x, eps)
    out = len(nodes) - 1
    spec = margin_spec(y, nodes[out].shape[0]).to(x.dtype)
    ibp = ibp_bounds(nodes, x_l, x_u, upto=out - 1)
    if bound == "ibp":
        return _ibp_margins(nodes, spec, ibp)
    if bound == "crown-ibp":
        lo, _ = backward_bound(nodes, out, spec, ibp, "crown")
        return lo
    relaxation = "wong-kolter" if bound == "wong-kolter" else "crown"
    if projections is not None and bound == "wong-kolter":
        bounds = projected_bounds(nodes, x_l, x_u, projections, generator)
    else:
        bounds = linear_bounds(nodes, ibp, relaxation, tighten_with_ibp=bound == "crown")
    lo, _ = backward_bound(nodes, out, spec, bounds, relaxation)
    if bound == "crown":
        lo = torch.maximum(lo, _ibp_margins(nodes, spec, ibp))
    return lo


def _ibp_margins(nodes: list[Node], spec: torch.Tensor, ibp: Bounds) -> torch.Tensor:
    """IBP's margin bounds: the specification merged into the last (affine) layer, as is usual."""
    last = nodes[-1]
    lo = torch.zeros(spec.shape[:2], device=spec.device, dtype=spec.dtype)
    if last.bias is not None:
        lo = lo + (spec * last.bias).flatten(2).sum(-1)
    for i, m in zip(last.inputs, last.maps):
        lam = m.transpose(spec)
        l, u = (t.unsqueeze(1) for t in ibp[i])
        lo = lo + (lam.clamp(min=0) * l + lam.clamp(max=0) * u).flatten(2).sum(-1)
    return lo


def margin_bounds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, bound: Bound = "crown",
                  projections: Optional[int] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(B, K) lower bounds on f_y - f_j over the clipped eps-ball around each x (0 at j = y).
    With ``projections`` (``wong-kolter`` only) the intermediate bounds are estimated by random
    projections: fast enough to train on, but an estimate, not a certificate."""
    nodes = to_graph(model, tuple(x.shape[1:]), allow_batchnorm=not model.training)
    return graph_margin_bounds(nodes, x, y, eps, bound, projections, generator)


def worst_case_logits(margins: torch.Tensor) -> torch.Tensor:
    """Logits whose cross-entropy is the robust loss: -margin lower bounds (0 at the label)."""
    return -margins


def verified(margins: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """True where every other class is certified below the label."""
    others = torch.ones_like(margins, dtype=torch.bool).scatter(1, y.view(-1, 1), False)
    return torch.where(others, margins > 0, torch.ones_like(others)).all(1)
