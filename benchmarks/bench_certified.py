"""Certified training throughput (images/second), side by side in one run.

For Wong et al.'s 4-layer CNN on CIFAR-shaped (3x32x32) and digits-shaped (1x8x8) inputs
it times one SGD step of natural training and of each certified objective (convex_dual =
the exact Wong-Kolter dual, ibp, crown_ibp) half way through the eps ramp (eps 2/255 of a
4/255 target, CROWN-IBP's beta 0.5, so CROWN-IBP really runs), and one step built on
convex-adversarial's ``robust_loss`` at the same eps (exact, ``proj=None``,
``bounded_input=True``: the same bound) on the same model and batch. Methods are
interleaved round by round, in a fresh random order each round; the median step after a warm-up round is reported, with:

- ``<method>_over_natural``: step time relative to natural training;
- ``ours_over_convex_adversarial``: our convex_dual step / theirs (target: <= 1), exact and
  with 50 random Cauchy projections (``proj=50, norm_type="l1_median"`` for theirs).

    python benchmarks/bench_certified.py [--rounds 3] [--batch-size 50]
"""

from __future__ import annotations

import json
import random
import statistics
import time

import torch

from robustmia.models.convex import wong_cnn
from robustmia.training.config import TrainConfig
from robustmia.training.methods import objective as method_objective
from robustmia.training.objectives import StepContext, StepOutput

import options

EPS = 4 / 255  # the target; half of it is in force at the measured step


def convex_adversarial_step(model, x, y, config, ctx):
    from convex_adversarial import robust_loss

    extra = {"proj": config.projections, "norm_type": "l1_median"} if config.projections else {}
    loss, _ = robust_loss(model, config.eps / 2, x, y, bounded_input=True, **extra)
    return StepOutput(loss.expand(len(y)), model(x))  # robust_loss gives the batch mean


def main() -> None:
    parser = options.parser("bench_certified", __doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    options.at_least("bench_certified", args, rounds=1, batch_size=1)
    methods = {
        "natural": (method_objective("natural"), {"method": "natural"}),
        "convex_dual": (method_objective("convex_dual"), {"method": "convex_dual", "eps": EPS}),
        "ibp": (method_objective("ibp"), {"method": "ibp", "eps": EPS}),
        "crown_ibp": (method_objective("crown_ibp"), {"method": "crown_ibp", "eps": EPS}),
        "convex_adversarial": (convex_adversarial_step, {"method": "convex_dual", "eps": EPS}),
        "convex_dual_proj50": (method_objective("convex_dual"), {"method": "convex_dual", "eps": EPS, "projections": 50}),
        "convex_adversarial_proj50": (convex_adversarial_step, {"method": "convex_dual", "eps": EPS, "projections": 50}),
    }
    results = {}
    for name, shape in (("wong-cnn 3x32x32", (3, 32, 32)), ("wong-cnn 1x8x8", (1, 8, 8))):
        torch.manual_seed(0)
        model = wong_cnn(*shape, 10)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = torch.rand(args.batch_size, *shape), torch.randint(0, 10, (args.batch_size,))
        times = {m: [] for m in methods}
        for round_ in range(args.rounds + 1):
            for method in random.Random(round_).sample(list(methods), len(methods)):
                objective, settings = methods[method]
                config = TrainConfig(**settings)
                ctx = StepContext(torch.Generator().manual_seed(round_), step=1, total_steps=4)  # half way up the ramp
                start = time.perf_counter()
                out = objective(model, x, y, config, ctx)
                optimizer.zero_grad(set_to_none=True)
                out.losses.mean().backward()
                optimizer.step()
                if round_ > 0:
                    times[method].append(time.perf_counter() - start)
        med = {m: statistics.median(t) for m, t in times.items()}
        results[name] = {
            "images_per_second": {m: round(args.batch_size / t, 2) for m, t in med.items()},
            **{f"{m}_over_natural": round(med[m] / med["natural"], 2) for m in ("convex_dual", "ibp", "crown_ibp")},
            "ours_over_convex_adversarial": round(med["convex_dual"] / med["convex_adversarial"], 3),
            "ours_over_convex_adversarial_proj50": round(med["convex_dual_proj50"] / med["convex_adversarial_proj50"], 3),
        }
    print(json.dumps({"benchmark": "certified_training_step", "batch_size": args.batch_size, "eps_in_force": EPS / 2,
                      "rounds": args.rounds, "threads": torch.get_num_threads(),
                      "target": {"ours_over_convex_adversarial": "<= 1", "ours_over_convex_adversarial_proj50": "<= 1"}, "results": results}, indent=2))


if __name__ == "__main__":
    options.run("bench_certified", main)
