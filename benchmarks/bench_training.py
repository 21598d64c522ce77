"""Training-step throughput (images/second) of every objective, side by side in one run.

For each model (small CNN, WRN-16-4) at batch 128 on 32x32x3 inputs it times one SGD step
of natural, PGD-7, TRADES-10, FGSM-RS training and of PGD-7 training built on torchattacks'
PGD (the same attack settings, on the train-mode model as Madry et al.). The methods are
interleaved round by round, in a fresh random order each round, so drift in the machine's
speed and the after-effects of one method on the next hit them all alike; the
median step time of the rounds after a warm-up round is reported, with the ratios:

- ``pgd_over_natural``: PGD-7 step time / natural step time (target: <= 8.5);
- ``ours_over_torchattacks``: our PGD-7 step time / the torchattacks-based one (target: <= 1).

    python benchmarks/bench_training.py [--rounds 3] [--models small-cnn,wrn-16-4]
"""

from __future__ import annotations

import json
import random
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from robustmia.data.datasets import DATASETS
from robustmia.models import build_model
from robustmia.training.config import TrainConfig
from robustmia.training.methods import objective as method_objective
from robustmia.training.objectives import StepContext, StepOutput

import options

EPS, ALPHA = 8 / 255, 2 / 255


def torchattacks_pgd(model, x, y, config, ctx):
    import torchattacks

    attack = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=7, random_start=True)
    attack.set_model_training_mode(model_training=True, batchnorm_training=True)  # as ours: BatchNorm on batch statistics
    x_adv = attack(x, y)
    logits = model(x_adv)
    return StepOutput(F.cross_entropy(logits, y, reduction="none"), logits)


def main() -> None:
    parser = options.parser("bench_training", __doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up round")
    parser.add_argument("--models", default="small-cnn,wrn-16-4")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    options.at_least("bench_training", args, rounds=1, batch_size=1)
    names = options.models("bench_training", args.models)

    methods = {
        "natural": (method_objective("natural"), {"method": "natural"}),
        "pgd7": (method_objective("pgd"), {"method": "pgd", "eps": EPS, "step_size": ALPHA, "attack_steps": 7}),
        "trades10": (method_objective("trades"), {"method": "trades", "eps": EPS, "step_size": ALPHA, "attack_steps": 10}),
        "fgsm_rs": (method_objective("fgsm_rs"), {"method": "fgsm_rs", "eps": EPS}),
        "torchattacks_pgd7": (torchattacks_pgd, {"method": "pgd", "eps": EPS}),
    }
    info = DATASETS["cifar10"]
    results = {}
    for name in names:
        torch.manual_seed(0)
        model = build_model(name, info)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(args.batch_size, *info.shape)
        y = torch.randint(0, 10, (args.batch_size,))
        times: dict[str, list[float]] = {m: [] for m in methods}
        for round_ in range(args.rounds + 1):
            # a fresh order each round, so that no method always follows the same one (caches, allocator)
            for method in random.Random(round_).sample(list(methods), len(methods)):
                objective, settings = methods[method]
                config = TrainConfig(**settings)
                generator = torch.Generator().manual_seed(round_)
                model.train()
                start = time.perf_counter()
                out = objective(model, x, y, config, StepContext(generator))
                optimizer.zero_grad(set_to_none=True)
                out.losses.mean().backward()
                optimizer.step()
                elapsed = time.perf_counter() - start
                if round_ > 0:
                    times[method].append(elapsed)
        median = {m: statistics.median(t) for m, t in times.items()}
        results[name] = {
            "images_per_second": {m: round(args.batch_size / t, 2) for m, t in median.items()},
            "pgd_over_natural": round(median["pgd7"] / median["natural"], 3),
            "ours_over_torchattacks": round(median["pgd7"] / median["torchattacks_pgd7"], 3),
        }
    print(json.dumps({
        "benchmark": "training_step_throughput",
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "targets": {"pgd_over_natural": "<= 8.5", "ours_over_torchattacks": "<= 1.0"},
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    options.run("bench_training", main)
