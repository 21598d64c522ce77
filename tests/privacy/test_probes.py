"""The probes of the label-only, white-box and verified-margin attacks, each against an independent
computation: the boundary distance against an exhaustive search on 2-D toy models, gradient norms
against per-sample gradients from a per-example autograd loop and from torch.func.jacrev, the verified
margin against robust.bounds.margin_bounds."""

import numpy as np
import pytest
import torch
from torch import nn

from robustmia.data.datasets import ImageSet
from robustmia.errors import UserError
from robustmia.privacy.probes import ProbeSettings, boundary_distance, check_probe, gradient_norms, probe_signals
from robustmia.robust.bounds import margin_bounds


def _grid_distance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, step: float = 0.002) -> np.ndarray:
    """The exact distance (up to the grid) from each 2-D point to the nearest point of [0, 1]^2 labelled otherwise."""
    g = torch.linspace(0, 1, int(round(1 / step)) + 1)
    grid = torch.cartesian_prod(g, g)
    with torch.no_grad():
        labels = model(grid).argmax(1)
    out = []
    for xi, yi in zip(x, y):
        other = grid[labels != yi]
        d = (other - xi).abs().max(1).values if norm == "linf" else (other - xi).norm(dim=1)
        out.append(float(d.min()) if len(d) else float("inf"))
    return np.array(out)


def _toy(seed: int, hidden: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 2)) if not hidden else nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    with torch.no_grad():  # put the boundary through the middle of the square
        out = model(torch.full((1, 2), 0.5))
        model[-1].bias -= out[0] - out[0].mean()
    return model.eval()


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("hidden", [0, 16])
def test_boundary_distance_matches_an_exhaustive_search_on_2d_toys(norm, hidden):
    model = _toy(1, hidden)
    x = torch.rand(40, 2, generator=torch.Generator().manual_seed(2)) * 0.8 + 0.1
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:5] = 1 - y[:5]  # five misclassified points: distance 0
    found = boundary_distance(model, x, y, norm=norm, bisections=12, steps=40).numpy()
    exact = _grid_distance(model, x, y, norm)
    assert (found[:5] == 0).all()
    top = 0.5 if norm == "linf" else 0.5 * np.sqrt(2)
    exact = np.minimum(exact[5:], top)  # the search stops at its largest radius
    tol = 0.004 + top / 2**12
    # PGD that flips the label proves an adversarial point within the radius: never below the truth
    assert (found[5:] >= exact - tol).all(), np.c_[found[5:], exact]
    close = np.abs(found[5:] - exact) <= tol + (0.0 if hidden == 0 else 0.01)
    assert close.mean() >= (1.0 if hidden == 0 else 0.9), np.c_[found[5:], exact]


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 10))

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))))


def test_gradient_norms_equal_per_sample_gradients_from_a_loop_and_from_jacrev():
    torch.manual_seed(0)
    model = _Net()
    model.bn.running_mean.uniform_(-0.1, 0.1)  # eval-mode statistics that are not the identity
    model.eval()
    x, y = torch.rand(12, 1, 8, 8), torch.randint(0, 10, (12,))
    got = gradient_norms(model, x, y)
    names = [n for n, _ in model.named_parameters()]
    loop = []
    for i in range(len(x)):  # per example, plain autograd
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), list(model.parameters()))
        loop.append(dict(zip(names, grads)))
    params = {n: p.detach() for n, p in model.named_parameters()}
    losses = lambda p: nn.functional.cross_entropy(torch.func.functional_call(model, p, (x,)), y, reduction="none")  # noqa: E731
    jac = torch.func.jacrev(losses)(params)  # (B, *shape) per parameter: per-sample gradients, since examples are independent
    total = torch.stack([sum(g.pow(2).sum() for g in d.values()) for d in loop]).sqrt()
    assert torch.allclose(got["grad_norm"], total, rtol=1e-4, atol=1e-7)
    assert torch.allclose(got["grad_norm"], sum(v.flatten(1).pow(2).sum(1) for v in jac.values()).sqrt(), rtol=1e-4, atol=1e-7)
    for layer in ("conv", "bn", "fc.1"):
        ref = torch.stack([sum(d[n].pow(2).sum() for n in names if n.rsplit(".", 1)[0] == layer) for d in loop]).sqrt()
        assert torch.allclose(got[f"grad_norm__{layer}"], ref, rtol=1e-4, atol=1e-7), layer
    xi = x.clone().requires_grad_(True)
    dx = torch.stack([torch.autograd.grad(nn.functional.cross_entropy(model(xi[i:i + 1]), y[i:i + 1]), xi)[0][i] for i in range(len(x))])
    assert torch.allclose(got["input_grad_norm"], dx.flatten(1).norm(dim=1), rtol=1e-4, atol=1e-7)
    assert torch.allclose(got["log_grad_norm"], total.log(), atol=1e-4)


class _OldStyleSwish(torch.autograd.Function):  # as in DeepMind's RobustBench WideResNets: no setup_context, so no vmap
    @staticmethod
    def forward(ctx, i):
        ctx.save_for_backward(i)
        return i * torch.sigmoid(i)

    @staticmethod
    def backward(ctx, grad_output):
        (i,) = ctx.saved_tensors
        s = torch.sigmoid(i)
        return grad_output * (s * (1 + i * (1 - s)))


class _Swish(nn.Module):
    def __init__(self, custom: bool):
        super().__init__()
        self.custom = custom

    def forward(self, x):
        return _OldStyleSwish.apply(x) if self.custom else x * torch.sigmoid(x)


def test_gradient_norms_of_a_layer_torch_func_cannot_transform_equal_those_of_its_plain_twin():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), _Swish(False), nn.Linear(16, 10)).eval()
    custom = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), _Swish(True), nn.Linear(16, 10)).eval()
    custom.load_state_dict(plain.state_dict())
    x, y = torch.rand(9, 1, 8, 8), torch.randint(0, 10, (9,))
    with pytest.raises(RuntimeError, match="functorch|setup_context"):  # what vmap says of it
        torch.func.vmap(torch.func.grad(lambda xi: custom(xi.unsqueeze(0)).sum()))(x)
    want, got = gradient_norms(plain, x, y), gradient_norms(custom, x, y)
    assert set(got) == set(want)
    for k in want:
        assert torch.allclose(got[k], want[k], rtol=1e-5, atol=1e-7), k


def test_verified_margin_is_the_certified_margin_bound_and_refused_where_bounds_cannot_go():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    data = ImageSet(torch.rand(20, 1, 8, 8), torch.randint(0, 10, (20,)), torch.arange(20))
    got = probe_signals("verified-margin", model, data, ProbeSettings(eps=0.05, bound="crown"), batch_size=7)["verified_margin"]
    m = margin_bounds(model, data.images, data.labels, 0.05, "crown")
    expected = torch.where(torch.nn.functional.one_hot(data.labels, 10).bool(), torch.inf, m).min(1).values
    assert np.allclose(got, expected.detach().numpy(), atol=1e-6)
    pooled = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 10)).eval()
    with pytest.raises(UserError, match=r"^attack verified-margin needs a model the certified bounds handle: .*MaxPool2d"):
        check_probe("verified-margin", pooled, data, ProbeSettings(eps=0.05), attack="verified-margin")
    with pytest.raises(UserError, match="needs an epsilon"):
        check_probe("label-keep", model, data, ProbeSettings(eps=None), attack="label-noise")


def test_probes_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    data = ImageSet(torch.rand(10, 1, 8, 8), torch.randint(0, 10, (10,)), torch.arange(100, 110))
    s = ProbeSettings(eps=0.2, draws=8, restarts=2, steps=3)
    a = probe_signals("label-keep", model, data, s, batch_size=10)
    b = probe_signals("label-keep", model, data.subset(np.arange(5, 10)), s, batch_size=2)
    assert np.array_equal(a["keep_noise"][5:], b["keep_noise"]) and np.array_equal(a["keep_adv"][5:], b["keep_adv"])
