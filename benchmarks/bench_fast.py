"""Time to accuracy of fast-cnn, small-cnn and wrn-16-4 on the CIFAR-10 subset, side by side in one run.

For each model, its recipe trains for the same wall-clock budget (the epochs are chosen from the
model's measured training throughput, and its schedule runs in full over them):

- natural, on ``--members`` members (default 5,000): test accuracy after every epoch (the full
  test split), the time at which it first reaches ``--target`` (default 78%), and where it ends;
  fast-cnn is trained with ``--seeds`` seeds (default 2) and their mean is reported;
- PGD-7 at 8/255 (Madry's 7 steps of 2/255, whatever steps the model's PGD recipe trains with), on
  ``--pgd-members`` members (default 1,000): PGD-10 accuracy on 500 of the run's
  members (adv-train) and 500 test images (adv-test) after every epoch, and the time at which adv-train
  first reaches ``--pgd-target`` (default 50%); ``adv_train_probe`` says how many of the probed images
  were members (all of them: a split draws its members at random, so the first images of the training
  split are mostly not);
- FLOPs per training image (torch's FlopCounterMode on one step of the recipe's objective), the
  FLOP/s achieved over the run, and that as a fraction of this machine's own float32 matmul peak
  (a 4096x4096 product, measured in the same run).

Training time excludes the per-epoch measurements. On a GPU (``--device cuda``) it adds the figure
that matters there: the time to train a target plus ``--references`` (default 16) PGD reference
models of ``--reference-recipe`` (default the laptop preset's PGD-8 recipe), one after the other as
an audit trains them (fast-cnn has BatchNorm, so they are not stacked).

    python benchmarks/bench_fast.py --data-dir ../shared/data [--budget 720] [--pgd-budget 720] [--kinds pgd] [--out FILE]

It prints one JSON object. ``--out FILE`` also writes it, after every model and every reference model
with ``"complete": false`` until the end, so that a run stopped early keeps what it measured.
``--quick`` runs everything at toy sizes, the references' timing included (the tests do).
"""

from __future__ import annotations

import json
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robustmia.data.datasets import load_dataset
from robustmia.data.splits import load_split
from robustmia.models import build_model
from robustmia.robust.evaluate import adversarial_accuracy, clean_accuracy
from robustmia.robust.pgd import pgd
from robustmia.training.config import TrainConfig
from robustmia.training.loop import train
from robustmia.training.methods import objective as method_objective
from robustmia.training.objectives import StepContext
from robustmia.training.recipes import load_recipe
from robustmia.training.run import SPLIT_FILE
from robustmia.data.catalog import dataset_info

import options

# model -> (natural recipe, PGD recipe); wrn-16-4 runs small-cnn's recipes with its own architecture
RECIPES = {
    "fast-cnn": ("cpu-cifar10-fast-natural", "cpu-cifar10-fast-pgd8"),
    "small-cnn": ("cpu-cifar10-small-natural", "cpu-cifar10-small-pgd8"),
    "wrn-16-4": ("cpu-cifar10-small-natural", "cpu-cifar10-small-pgd8"),
}
EVAL_PGD = dict(eps=8 / 255, alpha=2 / 255, steps=10, random_start=True, mode="eval")
MADRY = {"attack_steps": 7, "step_size": 2 / 255}  # the PGD part trains with Madry's PGD-7 whatever the recipe's steps


def matmul_peak(device: torch.device, n: int = 4096, rounds: int = 5) -> float:
    """float32 GFLOP/s of an n x n matrix product on ``device`` (the best of ``rounds``)."""
    a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
    best = math.inf
    for _ in range(rounds + 1):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _config(recipe: str, model: str, members: int, data_dir: str, **over) -> TrainConfig:
    settings = {**load_recipe(recipe), "model": model, "train_size": members, "data_dir": data_dir, "eval_every": 0, **over}
    settings.pop("iterations", None)
    return TrainConfig.model_validate(settings)


def step_cost(config: TrainConfig, device: torch.device, steps: int = 3) -> tuple[float, float]:
    """(seconds per training image, FLOPs per training image) of the recipe's objective on random images."""
    from robustmia.experiments.plan import flop_counter
    from robustmia.models.fast import fit_to_members

    info = dataset_info(config.dataset, config.data_dir)
    torch.manual_seed(0)
    model = build_model(config.model, info, config.model_args).to(device)
    b = config.batch_size
    x, y = torch.rand(b, *info.shape, device=device), torch.randint(0, info.num_classes, (b,), device=device)
    fit_to_members(model, x)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    objective = method_objective(config.method)
    ctx = StepContext(torch.Generator(device=device).manual_seed(0))

    def step():
        opt.zero_grad()
        objective(model, x, y, config, ctx).losses.mean().backward()
        opt.step()

    model.train()
    step()
    with flop_counter() as counter:
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - t) / (steps * b), counter.get_total_flops() / b


def run(config: TrainConfig, out: Path, device: torch.device, measure) -> list[dict]:
    """Train ``config`` into ``out``; per epoch, the cumulative training seconds and ``measure(model, members)``."""
    figures: list[dict] = []
    train(config, out, device=str(device), epoch_hook=lambda model, epoch, members, test: figures.append(measure(model, members)) or {})
    seconds = [json.loads(line)["seconds"] for line in (out / "timing.jsonl").read_text().splitlines()]
    total = 0.0
    for f, s in zip(figures, seconds):
        total += s
        f["seconds"] = round(total, 1)
    return figures


def first(figures: list[dict], key: str, target: float):
    return next((f["seconds"] for f in figures if f[key] >= target), None)


def main() -> None:
    parser = options.parser("bench_fast", __doc__)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--models", default="fast-cnn,small-cnn,wrn-16-4")
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--budget", type=float, default=720, help="seconds of natural training per model")
    parser.add_argument("--target", type=float, default=0.78)
    parser.add_argument("--seeds", type=int, default=2, help="fast-cnn's natural runs")
    parser.add_argument("--kinds", default="natural,pgd", help="which trainings to time: natural and/or pgd")
    parser.add_argument("--pgd-members", type=int, default=1000)
    parser.add_argument("--pgd-budget", type=float, default=720, help="seconds of PGD training per model")
    parser.add_argument("--pgd-target", type=float, default=0.5)
    parser.add_argument("--references", type=int, default=16, help="GPU only: PGD reference models timed beside a target")
    parser.add_argument("--reference-recipe", default=RECIPES["fast-cnn"][1], help="GPU only: the recipe of the target and its references")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="also write the JSON here, after every model and reference model")
    parser.add_argument("--quick", action="store_true", help="toy sizes, to check that it runs")
    args = parser.parse_args()
    options.at_least("bench_fast", args, members=2, budget=0.001, seeds=1, pgd_members=2, pgd_budget=0.001, references=1)
    for flag, value in (("--target", args.target), ("--pgd-target", args.pgd_target)):
        if not 0 < value <= 1:
            options.refuse("bench_fast", f"{flag} {value}: give an accuracy in (0, 1], e.g. 0.78")
    device = options.device("bench_fast", args.device, "or pass --device cpu")
    models = options.choices("bench_fast", "--models", args.models, RECIPES)
    kinds = options.choices("bench_fast", "--kinds", args.kinds, ("natural", "pgd"))
    if args.quick:
        args.members, args.pgd_members, args.budget, args.pgd_budget, args.seeds, args.references = 40, 20, 2.0, 2.0, 1, 2
    _, test_set = load_dataset("cifar10", args.data_dir)
    test_set = test_set.subset(range(min(len(test_set), 200 if args.quick else len(test_set))))
    probe = 20 if args.quick else 500
    peak = matmul_peak(device, 512 if args.quick else 4096)
    quick = {"model_args": {"widths": [8, 8, 8]}} if args.quick else {}
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "torch": torch.__version__, "matmul_peak_gflops": round(peak, 1),
              "members": args.members, "budget_s": args.budget, "target": args.target, "pgd_members": args.pgd_members,
              "pgd_budget_s": args.pgd_budget, "pgd_target": args.pgd_target, "complete": False, "models": {}}

    def save() -> None:
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2))
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            natural_recipe, pgd_recipe = RECIPES[model]
            entry = {}
            for kind, recipe, members, budget in (("natural", natural_recipe, args.members, args.budget),
                                                  ("pgd", pgd_recipe, args.pgd_members, args.pgd_budget)):
                if kind not in kinds:
                    continue
                over = {**(quick if model == "fast-cnn" else {}), **(MADRY if kind == "pgd" else {})}
                probe_config = _config(recipe, model, members, args.data_dir, **over)
                per_image, flops = step_cost(probe_config, device)
                epochs = max(1, int(budget / (per_image * members)))
                config = _config(recipe, model, members, args.data_dir, epochs=epochs, **over)
                probed: dict = {}  # the members probed for adv-train accuracy, the same ones every epoch
                if kind == "natural":
                    def measure(m, run_members):
                        return {"test_accuracy": clean_accuracy(m, test_set).accuracy}
                    key, target = "test_accuracy", args.target
                else:
                    test_probe = test_set.subset(range(probe))

                    def measure(m, run_members):
                        if "images" not in probed:
                            probed["images"] = run_members.subset(range(min(probe, len(run_members))))
                        mem_probe = probed["images"]
                        attack = lambda net, x, y: pgd(net, x, y, **EVAL_PGD)  # noqa: E731
                        return {"adv_train_accuracy": adversarial_accuracy(m, mem_probe, attack).accuracy,
                                "adv_test_accuracy": adversarial_accuracy(m, test_probe, attack).accuracy}
                    key, target = "adv_train_accuracy", args.pgd_target
                seeds = range(args.seeds if (model == "fast-cnn" and kind == "natural") else 1)
                runs = []
                for seed in seeds:
                    figures = run(config.model_copy(update={"seed": seed}), Path(tmp) / f"{model}-{kind}-{seed}", device, measure)
                    runs.append({"seed": seed, "final": figures[-1], "time_to_target_s": first(figures, key, target),
                                 "per_epoch": figures})
                seconds = sum(r["final"]["seconds"] for r in runs) / len(runs)
                entry[kind] = {"recipe": recipe, "epochs": epochs, "train_seconds": round(seconds, 1), "runs": runs,
                               f"mean_final_{key}": sum(r["final"][key] for r in runs) / len(runs),
                               "flops_per_image": flops, "achieved_gflops": round(flops * members * epochs / seconds / 1e9, 1),
                               "fraction_of_peak": round(flops * members * epochs / seconds / 1e9 / peak, 3)}
                if kind == "pgd":
                    entry[kind]["final_gap"] = runs[0]["final"]["adv_train_accuracy"] - runs[0]["final"]["adv_test_accuracy"]
                    members_of_run = load_split(Path(tmp) / f"{model}-{kind}-0" / SPLIT_FILE).members
                    ids = probed["images"].ids.numpy()  # a training image's id is its index in the train split
                    entry[kind]["adv_train_probe"] = {"images": len(ids), "members": int(np.isin(ids, members_of_run).sum())}
            result["models"][model] = entry
            save()
        models = result["models"]
        if "natural" in kinds and "fast-cnn" in models and "small-cnn" in models:
            result["fast_vs_small_natural_accuracy_same_budget"] = [models["fast-cnn"]["natural"]["mean_final_test_accuracy"],
                                                                    models["small-cnn"]["natural"]["mean_final_test_accuracy"]]
        if (device.type == "cuda" or args.quick) and "fast-cnn" in models:
            config = _config(args.reference_recipe, "fast-cnn", args.pgd_members, args.data_dir, **quick, **({"epochs": 2} if args.quick else {}))
            timing = result["target_plus_references_s"] = {"recipe": args.reference_recipe, "members": args.pgd_members,
                                                            "references": args.references, "models_trained": 0, "per_model_s": []}
            t = time.perf_counter()
            for j in range(args.references + 1):  # the target, then its references (each on its own members' half)
                start = time.perf_counter()
                train(config.model_copy(update={"seed": j}), Path(tmp) / f"ref-{j}", device=str(device))
                timing["per_model_s"].append(round(time.perf_counter() - start, 2))
                timing["models_trained"], timing["seconds"] = j + 1, round(time.perf_counter() - t, 1)
                save()
    result["complete"] = True
    save()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    options.run("bench_fast", main)
