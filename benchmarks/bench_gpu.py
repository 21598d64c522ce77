"""PGD-7 training throughput (images/second) on a GPU with each speed switch off and on.

For WRN-16-4 and WRN-34-10 at batch 128 on 32x32x3 inputs (CIFAR-10's shape; random pixels,
since only speed is measured), it times the training step of ``robustmia train --method pgd``
(PGD-7, eps 8/255, step 2/255, random start, train-mode attack) through the loop's own
helpers, under these settings:

- ``baseline``: float32, contiguous (NCHW) tensors, eager;
- ``channels_last``: the model and batches in channels_last memory format;
- ``bf16``: bf16 autocast of the step (train.loop.autocast says what stays float32);
- ``compile``: torch.compile of the model;
- ``all``: the three together.

The settings are interleaved round by round in a fresh random order; each reports the median
step time of its timed rounds (after warm-up rounds, which also absorb compilation), and its
speed-up over ``baseline``. Pinned memory is not a switch: training (one model or a stack)
keeps its whole training set on the device, so no training batch crosses the bus at all.
It finishes in well under 5 minutes on one H100/H200-class GPU:

    python benchmarks/bench_gpu.py [--rounds 10] [--warmup 3] [--models wrn-16-4,wrn-34-10]

``--device cpu`` runs the same code on the CPU (the tests do, with tiny settings).
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import time

import torch

from robustmia.data.datasets import DATASETS
from robustmia.models import build_model
from robustmia.training.config import TrainConfig
from robustmia.training.loop import autocast, prepare_batch, prepare_model
from robustmia.training.methods import objective as method_objective
from robustmia.training.objectives import StepContext

import options

SETTINGS = {
    "baseline": {},
    "channels_last": {"channels_last": True},
    "bf16": {"amp": "bf16"},
    "compile": {"compile": True},
    "all": {"channels_last": True, "amp": "bf16", "compile": True},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = options.parser("bench_gpu", __doc__)
    parser.add_argument("--models", default="wrn-16-4,wrn-34-10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (compilation happens here)")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    options.at_least("bench_gpu", args, batch_size=1, rounds=1, warmup=0)
    device = options.device("bench_gpu", args.device, "or pass --device cpu to check it runs")
    names = options.choices("bench_gpu", "--settings", args.settings, SETTINGS)
    model_names = options.models("bench_gpu", args.models)
    info = DATASETS["cifar10"]
    recipe = dict(dataset="cifar10", method="pgd", eps=8 / 255, step_size=2 / 255, attack_steps=7, random_start=True)
    results = {}
    for model_name in model_names:
        runs = {}
        for name in names:
            config = TrainConfig(model=model_name, **recipe, **SETTINGS[name])
            torch.manual_seed(0)
            model = build_model(model_name, info).to(device).train()
            net = prepare_model(model, config)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
            runs[name] = (config, net, optimizer)
        x = torch.rand(args.batch_size, *info.shape, device=device)
        y = torch.randint(0, info.num_classes, (args.batch_size,), device=device)
        times: dict[str, list[float]] = {n: [] for n in names}
        objective = method_objective("pgd")
        for round_ in range(args.warmup + args.rounds):
            for name in random.Random(round_).sample(names, len(names)):
                config, net, optimizer = runs[name]
                generator = torch.Generator(device=device).manual_seed(round_)
                _sync(device)
                start = time.perf_counter()
                with autocast(config, device):
                    out = objective(net, prepare_batch(x, config), y, config, StepContext(generator))
                optimizer.zero_grad(set_to_none=True)
                out.losses.mean().backward()
                optimizer.step()
                _sync(device)
                if round_ >= args.warmup:
                    times[name].append(time.perf_counter() - start)
        median = {n: statistics.median(t) for n, t in times.items()}
        results[model_name] = {
            "images_per_second": {n: round(args.batch_size / t, 1) for n, t in median.items()},
            "speedup_over_baseline": {n: round(median["baseline"] / t, 2) for n, t in median.items()} if "baseline" in median else {},
        }
    print(json.dumps({
        "benchmark": "gpu_pgd7_training_throughput",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "warmup_rounds": args.warmup,
        "torch": torch.__version__,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    options.run("bench_gpu", main)
