"""What an audit's reference models cost next to the training itself, side by side in one run.

On the CIFAR-10 subset with small-cnn: a natural target with 1,000 members, and K reference
models with its recipe, each on its own half of a 1,000 + 1,000 evaluation set (1,000
images, as the audit gives them). Three ways of training the same K models on the same data,
each after an untimed warm-up:

1. ``bare``: the bare training loop (batches, augmentation, the objective's step) and nothing
   else: no folder, no log, no evaluation, no checkpoint;
2. ``audit``: the audit's own reference training (``Audit.train_references``): run folders,
   log lines, a checkpoint each epoch, and no test scoring (reference models log none);
3. ``scoring_every_epoch``: the same through the loop with the whole test split (10,000
   images) scored every epoch, as every reference model did before.

Target: ``audit`` at most 1.1x ``bare``.

    python benchmarks/bench_audit.py [--data-dir ../shared/data/cifar10] [--k 4] [--epochs 3]
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robustmia.data.datasets import dataset_info
from robustmia.data.transforms import augment
from robustmia.experiments.audit import Audit
from robustmia.experiments.settings import AuditSettings
from robustmia.experiments.targets import RunTarget
from robustmia.seeding import epoch_generator, generator_draw
from robustmia.training.config import TrainConfig
from robustmia.training.loop import train
from robustmia.training.methods import objective as method_objective
from robustmia.training.objectives import StepContext
from robustmia.training.run import build_initial_model

import options


def bare(config: TrainConfig, images: torch.Tensor, labels: torch.Tensor) -> None:
    """The training steps alone, with the loop's batches, augmentation and objective."""
    info = dataset_info(config.dataset)
    model = build_initial_model(config, info)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    objective, kind = method_objective(config.method), config.resolved_augment(info.augment)
    steps_per_epoch = -(-len(labels) // config.batch_size)
    step = 0
    for epoch in range(config.epochs):
        generator = epoch_generator(config.seed, epoch)
        model.train()
        for idx in torch.randperm(len(labels), generator=generator).split(config.batch_size):
            x, y = augment(images[idx], kind, generator), labels[idx]
            out = objective(model, x, y, config, StepContext(generator, step, config.epochs * steps_per_epoch, generator_draw(generator)))
            optimizer.zero_grad(set_to_none=True)
            (out.losses.sum() / len(idx)).backward()
            optimizer.step()
            step += 1


def main() -> None:
    parser = options.parser("bench_audit", __doc__)
    default = Path(os.environ.get("ROBUSTMIA_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "cifar10"
    parser.add_argument("--data-dir", default=str(default))
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--members", type=int, default=1000)
    args = parser.parse_args()
    options.at_least("bench_audit", args, k=4, epochs=1, members=2)  # (lira-fixed needs 4)
    if args.k % 2:
        options.refuse("bench_audit", f"--k {args.k}: give an even number (every example is in half the reference models)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        target = TrainConfig(dataset="cifar10", data_dir=args.data_dir, model="small-cnn", train_size=args.members,
                             epochs=args.epochs, eval_every=args.epochs, seed=0)
        train(target, folder / "target")
        settings = AuditSettings(attacks=["lira-fixed"], references=args.k, stack_references=1, eval_size=args.members, bootstrap=0)
        audit = Audit(RunTarget(folder / "target"), settings, device="cpu")
        jobs = [(audit._reference(j)[0], audit.candidates.subset(np.flatnonzero(audit.keep[j]))) for j in range(args.k)]
        warm = jobs[0][0].model_copy(update={"epochs": 1})
        bare(warm, jobs[0][1].images, jobs[0][1].labels)
        train(warm, folder / "warm", members=jobs[0][1])

        start = time.perf_counter()
        for config, members in jobs:
            bare(config, members.images, members.labels)
        t_bare = time.perf_counter() - start
        start = time.perf_counter()
        audit.train_references(list(range(args.k)))
        t_audit = time.perf_counter() - start
        start = time.perf_counter()
        for j, (config, members) in enumerate(jobs):
            train(config.model_copy(update={"eval_every": 1}), folder / f"scored-{j}", members=members)
        t_scored = time.perf_counter() - start
    print(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "setting": {"dataset": "cifar10", "model": "small-cnn", "members_per_reference": int(len(jobs[0][1])), "k": args.k,
                    "epochs": args.epochs, "test_images_scored_per_epoch": 10000},
        "seconds": {"bare": round(t_bare, 2), "audit": round(t_audit, 2), "scoring_every_epoch": round(t_scored, 2)},
        "ratio_audit_over_bare": round(t_audit / t_bare, 3),
        "ratio_scoring_every_epoch_over_bare": round(t_scored / t_bare, 3),
        "target_audit_over_bare": 1.1,
        "met": t_audit / t_bare <= 1.1,
    }, indent=2))


if __name__ == "__main__":
    options.run("bench_audit", main)
