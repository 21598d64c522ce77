"""Scale-out throughput, side by side in one run: stacked reference models, worker processes and a Ray cluster.

1. ``stacked``: K=16 digits reference models with PGD-7 training (eps 0.1, step 0.025), each
   on its own random half of 600 evaluation images (as the audit gives them) with its own
   seed, trained one by one through the loop and then as one stack (train.stacked), for the
   MLP and the CNN of digits. Reported: both wall times, the speed-up, and the largest weight
   difference between the two ways (they should agree to float rounding). The CNN is stacked
   here on purpose although the audit would not stack it on a CPU (see train.stacked).
2. ``ray``: 8 independent runs (a study's target-training tasks: digits CNN, PGD-7, 300
   members, seeds 0-7) through the local backend one at a time with 1 thread, one at a time
   with the machine's default threads, 2 worker processes with 1 thread each (its default on
   2 cores), and a local Ray cluster of 2 workers with 1 thread each. The times of the worker
   processes and of Ray include starting them (each imports torch). Reported: the speed-ups,
   and whether their weights are bit-identical to the local 1-thread ones.

3. ``batchnorm``: reference models of a BatchNorm network's recipe (``--recipe``, default a fast-cnn of widths
   16/32 with PGD-3 on digits; on a GPU the paper-gpu preset's ``gpu-cifar10-paper-pgd8`` on ``--data-dir``):
   one model trained alone, then ``--k`` (default 8) stacked, each on its own random half of ``--members``
   examples (default 600) for ``--epochs`` epochs. Reported: both wall times and the stack's time in units of
   one model's (K of them one by one would be K).

Targets: stacked at least 3x faster than one by one; 2 workers (local or Ray) at least 1.6x
faster than one at a time with 1 thread; on a GPU, 8 stacked BatchNorm references in less than 4x one
model's time.

    python benchmarks/bench_scale.py [--k 16] [--epochs 10] [--run-epochs 120] [--skip-ray] [--device cuda] [--sections stacked]
    python benchmarks/bench_scale.py --sections batchnorm --device cuda --recipe gpu-cifar10-paper-pgd8 --data-dir DIR --members 16000 --epochs 1

On a GPU machine, ``--device cuda --sections stacked`` measures the stack where it is meant to pay
(the ``parallel`` section is about CPU worker processes).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from robustmia.data.datasets import ImageSet, load_dataset
from robustmia.experiments.audit import balanced_keep
from robustmia.experiments.runner import train_target
from robustmia.training.checkpoint import checkpoint_dir, load_checkpoint
from robustmia.training.config import TrainConfig
from robustmia.training.loop import train
from robustmia.training.stacked import train_stacked

import options


def _stacked(model: str, k: int, epochs: int, folder: Path, device: str) -> dict:
    train_set, test_set = load_dataset("digits")
    candidates = ImageSet.concat(train_set.subset(range(300)), test_set.subset(range(300)))
    keep = balanced_keep(k, len(candidates), seed=0)
    members = [candidates.subset(np.flatnonzero(keep[j])) for j in range(k)]
    configs = [TrainConfig(model=model, method="pgd", eps=0.1, step_size=0.025, attack_steps=7, batch_size=64, epochs=epochs, seed=j)
               for j in range(k)]
    # warm-up, untimed: the first training of a process pays one-off imports and allocations
    warm = [c.model_copy(update={"epochs": 1}) for c in configs[:2]]
    train(warm[0], folder / f"{model}-warm-one", members=members[0], device=device)
    train_stacked(warm, [folder / f"{model}-warm-stacked-{j}" for j in range(2)], members[:2], device=device)
    start = time.perf_counter()
    for j in range(k):
        train(configs[j], folder / f"{model}-one-{j}", members=members[j], device=device)
    one = time.perf_counter() - start
    start = time.perf_counter()
    train_stacked(configs, [folder / f"{model}-stacked-{j}" for j in range(k)], members, device=device)
    stacked = time.perf_counter() - start
    diffs = []
    for j in range(k):
        a = load_checkpoint(checkpoint_dir(folder / f"{model}-one-{j}"), with_optimizer=False)[0]
        b = load_checkpoint(checkpoint_dir(folder / f"{model}-stacked-{j}"), with_optimizer=False)[0]
        diffs.append(max((a[n] - b[n]).abs().max().item() for n in a))
    return {"one_by_one_s": round(one, 2), "stacked_s": round(stacked, 2), "speedup": round(one / stacked, 2),
            "max_weight_difference": float(max(diffs)), "models_within_1e-5": sum(d < 1e-5 for d in diffs)}


BATCHNORM_DEFAULT = dict(model="fast-cnn", model_args={"widths": [16, 32]}, method="pgd", eps=0.1, attack_steps=3, step_size=0.05,
                         batch_size=64, lr=0.05)


def _batchnorm(recipe: Optional[str], data_dir: Optional[str], k: int, members: int, epochs: int, folder: Path, device: str) -> dict:
    """One reference model of a BatchNorm recipe alone, then K of them stacked (each on its own half of ``members``)."""
    from robustmia.training.recipes import load_recipe

    settings = {**(load_recipe(recipe) if recipe else BATCHNORM_DEFAULT), "epochs": epochs, "eval_every": 0}
    settings.pop("iterations", None)
    settings.pop("train_size", None)
    if data_dir is not None:
        settings["data_dir"] = data_dir
    base = TrainConfig.model_validate(settings)
    train_set, _ = load_dataset(base.dataset, base.data_dir)
    if members > len(train_set):
        options.refuse("bench_scale", f"--members {members}: {base.dataset} has {len(train_set)} training images")
    pool = train_set.subset(range(members))
    keep = balanced_keep(k, members, seed=0)
    halves = [pool.subset(np.flatnonzero(keep[j])) for j in range(k)]
    configs = [base.model_copy(update={"seed": j}) for j in range(k)]
    warm = [c.model_copy(update={"epochs": 1}) for c in configs[:2]]  # untimed: one-off imports, allocations, kernel choices
    train(warm[0], folder / "bn-warm-one", members=halves[0], device=device)
    train_stacked(warm, [folder / f"bn-warm-stacked-{j}" for j in range(2)], halves[:2], device=device)
    start = time.perf_counter()
    train(configs[0], folder / "bn-one", members=halves[0], device=device)
    one = time.perf_counter() - start
    start = time.perf_counter()
    train_stacked(configs, [folder / f"bn-stacked-{j}" for j in range(k)], halves, device=device)
    stacked = time.perf_counter() - start
    return {"recipe": recipe or "fast-cnn 16/32, PGD-3 on digits", "model": base.model, "k": k, "members_each": len(halves[0]),
            "epochs": epochs, "device": device, "one_model_s": round(one, 3), "k_stacked_s": round(stacked, 3),
            "stack_in_units_of_one_model": round(stacked / one, 2)}


def _runs(backend, configs: list[TrainConfig], folder: Path) -> float:
    start = time.perf_counter()
    backend.run([(train_target, (c, str(folder / f"run-{i}"), None, "cpu")) for i, c in enumerate(configs)])
    backend.close()
    return time.perf_counter() - start


def _identical(folder: Path, a: str, b: str, runs: int) -> bool:
    return all(all(torch.equal(x[n], y[n]) for n in x)
               for x, y in ((load_checkpoint(checkpoint_dir(folder / w / f"run-{i}"), with_optimizer=False)[0] for w in (a, b))
                            for i in range(runs)))


def _parallel(epochs: int, folder: Path, ray: bool) -> dict:
    from robustmia.experiments.backends import LocalBackend, RayBackend

    configs = [TrainConfig(model="digits-cnn", method="pgd", eps=0.1, step_size=0.025, train_size=300, batch_size=64,
                           epochs=epochs, seed=i) for i in range(8)]
    one_thread = _runs(LocalBackend(threads=1), configs, folder / "local-1-thread")
    default = _runs(LocalBackend(), configs, folder / "local-default-threads")
    workers = _runs(LocalBackend(threads=1, workers=2), configs, folder / "local-2-workers")
    out = {
        "runs": len(configs),
        "local_1_thread_s": round(one_thread, 2),
        "local_default_threads_s": round(default, 2),
        "default_threads": torch.get_num_threads(),
        "local_2_workers_s": round(workers, 2),
        "local_2_workers_speedup_over_1_thread": round(one_thread / workers, 2),
        "local_2_workers_speedup_over_default_threads": round(default / workers, 2),
        "local_2_workers_identical_to_1_thread": _identical(folder, "local-2-workers", "local-1-thread", len(configs)),
    }
    if not ray:
        return out
    start = time.perf_counter()
    backend = RayBackend(workers=2, threads=1)
    startup = time.perf_counter() - start
    _runs(backend, configs, folder / "ray")
    ray_total = time.perf_counter() - start
    return {
        **out,
        "ray_2_workers_s": round(ray_total, 2),
        "ray_startup_s": round(startup, 2),
        "speedup_over_local_1_thread": round(one_thread / ray_total, 2),
        "speedup_over_local_default_threads": round(default / ray_total, 2),
        "weights_identical_to_local_1_thread": _identical(folder, "ray", "local-1-thread", len(configs)),
    }


def main() -> None:
    parser = options.parser("bench_scale", __doc__)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each reference model")
    parser.add_argument("--run-epochs", type=int, default=120, help="epochs of each of the 8 independent runs (about 18 s each)")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--device", default="cpu", help="device of the stacked comparison (cuda on a GPU machine); Ray runs on CPUs")
    parser.add_argument("--sections", default="stacked,parallel", help="which of stacked, parallel and batchnorm to run")
    parser.add_argument("--recipe", default=None, help="batchnorm: the references' recipe (default a small fast-cnn on digits)")
    parser.add_argument("--data-dir", default=None, help="batchnorm: where the recipe's dataset lies")
    parser.add_argument("--members", type=int, default=600, help="batchnorm: examples the K references take halves of")
    args = parser.parse_args()
    sections = options.choices("bench_scale", "--sections", args.sections, ("stacked", "parallel", "batchnorm"))
    device = options.device("bench_scale", args.device, "or leave out --device")
    options.at_least("bench_scale", args, k=2, epochs=1, run_epochs=1, members=2)
    if args.recipe is not None:
        from robustmia.training.recipes import list_recipes

        if args.recipe not in list_recipes():
            options.refuse("bench_scale", f"--recipe {args.recipe!r} is no recipe; see robustmia recipes")
    result = {
        "benchmark": "scale",
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "targets": {"stacked_speedup": ">= 3", "2_workers_over_local_1_thread": ">= 1.6",
                    "batchnorm_stack_in_units_of_one_model": "< 4 for 8 references on a GPU"},
    }
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "stacked" in sections:
            result["stacked"] = {"k": args.k, "epochs": args.epochs, "device": args.device,
                                 **{m: _stacked(m, args.k, args.epochs, folder, args.device) for m in ("digits-mlp", "digits-cnn")}}
        if "parallel" in sections:
            result["parallel"] = _parallel(args.run_epochs, folder, ray=not args.skip_ray)
        if "batchnorm" in sections:
            result["batchnorm"] = _batchnorm(args.recipe, args.data_dir, args.k, args.members, args.epochs, folder, args.device)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    options.run("bench_scale", main)
