"""Certified bounds: soundness on random networks of every supported shape, agreement with
convex-adversarial (Wong & Kolter's own code) and with exact LPs on a tiny network."""

import numpy as np
import pytest
import torch
from torch import nn

from robustmia.data.datasets import DatasetInfo
from robustmia.errors import UserError
from robustmia.models import build_model
from robustmia.models.convex import wong_cnn, wong_resnet
from robustmia.models.layers import Normalize
from robustmia.robust.bounds import BOUND_NAMES, graph_margin_bounds, margin_bounds, margin_spec
from robustmia.robust.graph import to_graph
from robustmia.robust.pgd import pgd


def _margins(model, x, y):
    with torch.no_grad():
        z = model(x)
    return z.gather(1, y.view(-1, 1)) - z


def _shapes():
    torch.manual_seed(0)
    norm = Normalize((0.5,), (0.3,))
    mlp = nn.Sequential(norm, nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    return {
        "mlp": mlp,
        "wong-cnn": nn.Sequential(Normalize((0.5,), (0.3,)), wong_cnn(1, 8, 8, 10)),
        "wong-resnet": nn.Sequential(Normalize((0.5,), (0.3,)), wong_resnet(1, 8, 8, 10)),
    }


@pytest.mark.parametrize("shape", ["mlp", "wong-cnn", "wong-resnet"])
def test_bounds_are_sound_and_ordered(shape):
    model = _shapes()[shape].eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (6,), generator=g)
    eps = 0.03
    bounds = {m: margin_bounds(model, x, y, eps, m).detach() for m in BOUND_NAMES}
    # the worst point any attack finds, and many random points of the clipped ball
    x_adv = pgd(model, x, y, eps=eps, alpha=eps / 4, steps=20, restarts=3, generator=g)
    points = [x_adv] + [(x + (torch.rand(x.shape, generator=g) * 2 - 1) * eps).clamp(0, 1) for _ in range(200)]
    worst = torch.stack([_margins(model, p, y) for p in points]).min(0).values
    for m, b in bounds.items():
        assert (b <= worst + 1e-5).all(), (m, (b - worst).max())
    assert (bounds["crown"] >= bounds["ibp"] - 1e-6).all()
    assert (bounds["wong-kolter"] > bounds["ibp"]).float().mean() > 0.5  # tighter than IBP on random nets
    zero = {m: margin_bounds(model, x, y, 0.0, m).detach() for m in BOUND_NAMES}
    clean = _margins(model, x, y)
    for m, b in zero.items():
        assert torch.allclose(b, clean, atol=1e-5), m


def _to_convex_adversarial(net):
    from convex_adversarial import Dense, DenseSequential

    layers = []
    for m in net:
        if type(m).__name__ == "Residual":
            layers += [Dense(m.first), nn.ReLU(), Dense(m.skip, None, m.second)]
        else:
            layers.append(m)
    return DenseSequential(*layers)


@pytest.mark.parametrize("path", ["backward", "forward"])
@pytest.mark.parametrize("shape, in_shape", [("wong-cnn", (3, 16, 16)), ("wong-resnet", (3, 8, 8)), ("wong-cnn", (1, 8, 8))])
def test_wong_kolter_bound_equals_convex_adversarial(shape, in_shape, path, monkeypatch):
    """Both ways of computing the exact intermediate bounds (rows backward, or per-example
    identity columns forward, which linear_bounds picks by cost) give convex-adversarial's bound."""
    ca = pytest.importorskip("convex_adversarial", reason="the oracle: pip install --no-deps convex-adversarial==0.4.4")
    from robustmia.robust import bounds

    monkeypatch.setattr(bounds, "_forward_is_cheaper", lambda nodes, ibp: path == "forward")
    torch.manual_seed(2)
    builder = wong_cnn if shape == "wong-cnn" else wong_resnet
    net = builder(*in_shape, 10)
    theirs_net = _to_convex_adversarial(net) if shape == "wong-resnet" else net
    x = torch.rand(4, *in_shape)
    y = torch.randint(0, 10, (4,))
    for eps in (0.002, 0.01, 0.03):
        with torch.no_grad():
            ours = margin_bounds(net, x, y, eps, "wong-kolter")
            theirs = ca.DualNetwork(theirs_net, x, eps, bounded_input=True)(margin_spec(y, 10))
        assert (ours - theirs).abs().max() < 1e-4, (eps, (ours - theirs).abs().max())


def test_exact_bounds_go_forward_on_small_inputs_and_backward_on_large_ones():
    from robustmia.robust.bounds import _forward_is_cheaper, ibp_bounds, input_box

    torch.manual_seed(0)
    for in_shape, forward in (((1, 8, 8), True), ((3, 32, 32), False)):
        nodes = to_graph(wong_cnn(*in_shape, 10), in_shape)
        x = torch.rand(50, *in_shape)
        ibp = ibp_bounds(nodes, *input_box(x, 2 / 255), upto=len(nodes) - 2)
        assert _forward_is_cheaper(nodes, ibp) is forward, in_shape


def _lp_lower_bound(net, x, eps, c, pre_bounds):
    """min c . f(x') over the triangle relaxation with the given pre-activation bounds (scipy linprog)."""
    from scipy.optimize import linprog

    lins = [m for m in net if isinstance(m, nn.Linear)]
    sizes = [lins[0].in_features] + [m.out_features for m in lins]
    # variables: x, then for each hidden layer (z, a), then the output z
    offsets, n = [0], sizes[0]
    for s in sizes[1:-1]:
        offsets += [n, n + s]
        n += 2 * s
    offsets.append(n)
    n += sizes[-1]
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    bounds = [(max(0.0, v - eps), min(1.0, v + eps)) for v in x]
    bounds += [(None, None)] * (n - len(bounds))
    prev = 0
    for k, lin in enumerate(lins):
        w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
        z0 = offsets[2 * k + 1]
        for j in range(w.shape[0]):
            row = np.zeros(n)
            row[z0 + j] = 1
            row[prev : prev + w.shape[1]] -= w[j]
            a_eq.append(row)
            b_eq.append(b[j])
        if k == len(lins) - 1:
            break
        l, u = (t.detach().double().numpy().ravel() for t in pre_bounds[k])
        a0 = offsets[2 * k + 2]
        for j in range(w.shape[0]):
            if u[j] <= 0:
                bounds[a0 + j] = (0, 0)
            elif l[j] >= 0:
                row = np.zeros(n)
                row[a0 + j], row[z0 + j] = 1, -1
                a_eq.append(row)
                b_eq.append(0.0)
            else:
                bounds[a0 + j] = (0, None)
                row = np.zeros(n)  # a >= z
                row[z0 + j], row[a0 + j] = 1, -1
                a_ub.append(row)
                b_ub.append(0.0)
                row = np.zeros(n)  # a <= u (z - l) / (u - l)
                d = u[j] / (u[j] - l[j])
                row[a0 + j], row[z0 + j] = 1, -d
                a_ub.append(row)
                b_ub.append(-d * l[j])
        prev = a0
    cost = np.zeros(n)
    cost[offsets[-1] :] = c
    res = linprog(cost, A_ub=np.array(a_ub) if a_ub else None, b_ub=b_ub or None, A_eq=np.array(a_eq), b_eq=b_eq,
                  bounds=bounds, method="highs")
    assert res.status == 0
    return res.fun


def test_dual_bound_against_the_exact_lp_on_a_tiny_network():
    from robustmia.robust.bounds import ibp_bounds, input_box, linear_bounds

    gaps = []
    for seed in range(5):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).double()
        x = torch.rand(1, 4, dtype=torch.float64)
        y = torch.tensor([0])
        eps = 0.15
        nodes = to_graph(net, (4,))
        wk = graph_margin_bounds(nodes, x, y, eps, "wong-kolter").detach()[0]
        ibp = graph_margin_bounds(nodes, x, y, eps, "ibp").detach()[0]
        pre = linear_bounds(nodes, ibp_bounds(nodes, *input_box(x, eps)), "wong-kolter", tighten_with_ibp=False)
        pre_bounds = [pre[k] for k in sorted(pre) if k > 0]
        for j in (1, 2):
            c = np.zeros(3)
            c[0], c[j] = 1, -1
            lp = _lp_lower_bound(net, x[0].numpy(), eps, c, pre_bounds)
            assert wk[j] <= lp + 1e-7  # a dual feasible point: never tighter than the LP optimum
            assert ibp[j] <= lp + 1e-7
            gaps.append((lp - wk[j].item(), lp - ibp[j].item()))
    # stated factor: the Wong-Kolter bound is never further from the LP optimum than IBP, and
    # on these networks it stays within 1.0 of it (margins of order 1)
    for wk_gap, ibp_gap in gaps:
        assert wk_gap <= ibp_gap + 1e-9
        assert wk_gap <= 1.0


def test_unsupported_layers_are_refused_by_name():
    digits = DatasetInfo("digits", (1, 8, 8), 10, (0.3,), (0.37,), "none", "")
    with pytest.raises(UserError, match="MaxPool2d"):
        to_graph(build_model("small-cnn", digits), (1, 8, 8))
    bn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10)).train()
    with pytest.raises(UserError, match="BatchNorm layer 1 in training mode"):
        to_graph(bn, (1, 8, 8), allow_batchnorm=False)
    # BatchNorm in eval mode is an affine map: certifiable, and sound
    bn.eval()
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([1, 2, 3])
    assert torch.allclose(margin_bounds(bn, x, y, 0.0, "ibp"), _margins(bn, x, y), atol=1e-5)


@pytest.mark.parametrize("shape", ["wong-cnn", "wong-resnet"])
def test_random_projections_estimate_the_exact_dual(shape):
    model = _shapes()[shape].eval()
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(4, 1, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g)
    with torch.no_grad():
        exact = margin_bounds(model, x, y, 0.03, "wong-kolter")
        errors = []
        for r in (20, 2000):
            est = margin_bounds(model, x, y, 0.03, "wong-kolter", projections=r, generator=torch.Generator().manual_seed(0))
            errors.append(((est - exact).abs().mean() / exact.abs().mean()).item())
    # the median estimator converges to the exact bound (errors compound through the layers' slopes)
    assert errors[1] < 0.15 and errors[1] < errors[0] / 3, errors


def test_convex_dual_trains_with_projections(tmp_path, run_main):
    import json

    code, out, err = run_main("train", "--model", "wong-cnn", "--method", "convex_dual", "--eps", "0.05", "--epochs", "5",
                              "--out", str(tmp_path / "p"), "--quiet", "--json")
    assert code == 0, err
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: wong-cnn\nmethod: convex_dual\neps: 0.05\nepochs: 5\nprojections: 50\n")
    code, out_p, err = run_main("train", "--config", str(cfg), "--out", str(tmp_path / "q"), "--quiet", "--json")
    assert code == 0, err
    exact, projected = json.loads(out)["test_accuracy"], json.loads(out_p)["test_accuracy"]
    assert exact > 0.4 and projected > 0.4 and abs(exact - projected) < 0.15, (exact, projected)
