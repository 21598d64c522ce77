"""What a study will cost before it runs (``robustmia run SPEC --plan``, ``reproduce NAME --plan``).

For each target: the FLOPs of one forward pass of one image and of one training step per image (torch's
FlopCounterMode on one step of the recipe's own objective, run on the meta device, so that nothing is
computed), and from them the FLOPs of

- training: the step's FLOPs x members x epochs (a run that two targets share, once);
- reference models: K x the same step's FLOPs x each reference's training examples x epochs (a folder of
  references that two targets share, once);
- evaluation: a forward pass over its members and the test split, PGD over the examples the evaluation
  attacks (a forward and an input-gradient pass, 2 forward passes' FLOPs, per step) and, for a certified
  model's verified accuracy, 10 forward passes per bounded image (a rough figure: a bound's cost depends on
  the bound);
- the audit: the target's and every reference model's signals on the evaluation set and the population,
  PGD points where an attack reads them;
- tracking (Figs. 3 and 4): every ``track_every`` epochs, PGD-10 and signals on 300 members and 300 test images.

The time is the FLOPs over a stated throughput: ``GPU_TFLOPS`` (measured on one NVIDIA H200 with bf16 and
channels-last: 176 TFLOP/s for PGD-7 training of WRN-34-10, 168 for fast-cnn 128/512/512), ``CPU_TFLOPS``
(2 cores, float32), or the user's own. Small networks at small batches run below such a figure on a GPU,
bound by kernel launches, and probes of label-only attacks are not counted, so the estimate is a lower
bound of the time there. ``benchmarks/bench_plan.py`` sets the estimate beside the measured time.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

GPU_TFLOPS = 170.0  # one NVIDIA H200, bf16 and channels-last (see the module docstring)
GPU_BASIS = "one NVIDIA H200 with bf16 and channels-last (measured: 176 TFLOP/s for WRN-34-10, 168 for fast-cnn)"
CPU_TFLOPS = 0.1  # 2 cores in float32 (measured: fast-cnn trained at 133 GFLOP/s, the digits CNN at about 70)
CPU_BASIS = "2 CPU cores in float32 (measured here: 0.07-0.13 TFLOP/s by model)"
TRACKED = 300  # per side: runner.TRACK_EXAMPLES
TRACK_STEPS = 10
VERIFY_PASSES = 10  # forward passes' FLOPs per image a verified bound is counted as


class _GlobalOnly:
    """A stand-in for FlopCounterMode's per-module tracker, whose hooks break autograd.grad on an input (PGD):
    every FLOP is counted under the total only."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def flop_counter():
    """torch's FlopCounterMode counting the total only (its module tracker breaks PGD's input gradients)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    return counter


@functools.lru_cache(maxsize=64)
def _step_flops(config_json: str) -> tuple[float, float]:
    import torch

    from robustmia.data.catalog import dataset_info
    from robustmia.training.config import TrainConfig
    from robustmia.training.methods import objective
    from robustmia.training.objectives import StepContext
    from robustmia.training.run import build_initial_model

    config = TrainConfig.model_validate_json(config_json)
    info = dataset_info(config.dataset, config.data_dir)
    for device in ("meta", "cpu"):  # a certified bound that branches on values cannot run on meta tensors
        try:
            torch.manual_seed(0)
            model = build_initial_model(config, info).to(device)
            x = torch.rand(2, *info.shape, device=device)
            y = torch.randint(0, info.num_classes, (2,), device=device)
            draw = lambda fn, shape, dev: fn(shape, device=dev)  # noqa: E731
            model.eval()
            with torch.no_grad(), flop_counter() as counter:
                model(x)
            forward = counter.get_total_flops() / 2
            model.train()
            with flop_counter() as counter:
                objective(config.method)(model, x, y, config, StepContext(None, draw=draw)).losses.mean().backward()
            return forward, counter.get_total_flops() / 2
        except Exception:  # noqa: BLE001  (retried on the CPU)
            if device == "cpu":
                raise
    raise AssertionError


def step_flops(config: Any) -> tuple[float, float]:
    """(FLOPs of one forward pass of one image, FLOPs of one training step per image) of ``config``'s model and method."""
    return _step_flops(config.model_copy(update={"data_dir": config.data_dir}).model_dump_json())


@dataclass
class TargetCost:
    """The FLOPs of one target's work, by part (``parts``), and what they were counted from."""

    name: str
    model: str
    method: str
    members: int
    epochs: float
    forward: float
    step: float
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.parts.values())


@dataclass
class Plan:
    targets: list[TargetCost]
    tflops: float
    basis: str

    @property
    def total(self) -> float:
        return sum(t.total for t in self.targets)

    def seconds(self, flops: float) -> float:
        return flops / (self.tflops * 1e12)

    def to_dict(self) -> dict[str, Any]:
        return {"throughput_tflops": self.tflops, "basis": self.basis, "total_flops": self.total,
                "estimated_seconds": round(self.seconds(self.total), 1),
                "targets": [{"name": t.name, "model": t.model, "method": t.method, "members": t.members, "epochs": t.epochs,
                             "forward_flops": t.forward, "step_flops_per_image": t.step, "flops": t.parts,
                             "estimated_seconds": round(self.seconds(t.total), 1)} for t in self.targets]}


def _sizes(config: Any) -> tuple[int, int]:
    """(train, test) split sizes of a config's dataset: told by its files where they are, else its standard sizes."""
    from robustmia.data.catalog import dataset_module, dataset_sizes, resolve_root
    from robustmia.errors import UserError

    sizes = dataset_sizes(config.dataset, config.data_dir)
    if sizes is not None:
        return sizes
    module = dataset_module(config.dataset)
    if module.missing(resolve_root(config.dataset, config.data_dir)) is None:
        from robustmia.data.datasets import load_dataset

        train, test = load_dataset(config.dataset, config.data_dir)
        return len(train), len(test)
    if getattr(module, "STANDARD_SIZES", None) is None:
        raise UserError(f"the size of {config.dataset} is not known without its files; pass --data-dir to where it lies")
    return module.STANDARD_SIZES


def _epochs(config: Any, members: int) -> float:
    from robustmia.training.config import DEFAULT_EPOCHS

    if config.iterations is not None:
        return config.iterations * config.batch_size / members
    return float(config.epochs or DEFAULT_EPOCHS)


def plan_study(spec: Any, configs: dict[str, Any], tflops: Optional[float] = None, gpu: bool = True) -> Plan:
    """The cost of every target of ``spec`` (a StudySpec and its validated TrainConfigs) at ``tflops`` (default:
    the stated GPU or CPU throughput, by ``gpu``)."""
    from robustmia.experiments.audit import reference_groups
    from robustmia.experiments.runner import _audit_settings, run_hash, study_target
    from robustmia.privacy.attacks import ATTACKS, needs_references

    trained, referenced, targets = set(), set(), []
    for target in spec.targets:
        if target.external is not None:
            continue  # trained elsewhere: its evaluation and audit are not counted
        config = configs[target.name]
        n_train, n_test = _sizes(config)
        members = config.train_size or n_train
        epochs = _epochs(config, members)
        forward, step = step_flops(config)
        settings = _audit_settings(spec, target, study_target(target, configs, Path(".")))
        cost = TargetCost(target.name, config.model, config.method, members, round(epochs, 2), forward, step)
        run = run_hash(config)
        cost.parts["training"] = 0.0 if run in trained else step * members * epochs
        trained.add(run)
        tracks = math.floor(epochs / spec.track_every) if spec.track_every else 0
        cost.parts["tracking"] = tracks * 2 * min(TRACKED, members, n_test) * forward * (2 * TRACK_STEPS + 3)
        if config.eval_every:
            cost.parts["training"] += math.ceil(epochs / config.eval_every) * n_test * forward
        nonmembers = min(members, n_test)
        e = spec.evaluation
        attacked = 2 * min(nonmembers, e.max_examples or members)
        evaluation = (members + nonmembers) * forward + (attacked * forward * (2 * e.attack_steps + 1) if config.eps else 0)
        if e.bound != "none" and config.method in _certified():
            evaluation += attacked * forward * VERIFY_PASSES
        cost.parts["evaluation"] = evaluation
        n = min(members, nonmembers, settings.eval_size or members)
        adversarial = any(ATTACKS[a].adversarial for a in settings.attacks) and (config.eps or settings.eps)
        per_example = forward * (1 + (2 * settings.attack_steps + 1 if adversarial else 0))
        population = settings.population if any(ATTACKS[a].population for a in settings.attacks) else 0
        audit = (2 * n + population) * per_example
        k = settings.references if reference_groups(settings) else 0
        key = (run, k)
        if k and key not in referenced:
            spare = (n_test - nonmembers) + (nonmembers - n) + (n_train - members) - population
            ref_members = min(members, n + max(spare, 0))
            cost.parts["references"] = k * step * ref_members * epochs
            reads = any(needs_references(a, settings.threshold) and ATTACKS[a].adversarial for a in settings.attacks)
            audit += k * (2 * n + population) * forward * (1 + (2 * settings.attack_steps + 1 if reads else 0))
        referenced.add(key)
        cost.parts["audit"] = audit
        targets.append(cost)
    if tflops is None:
        tflops, basis = (GPU_TFLOPS, GPU_BASIS) if gpu else (CPU_TFLOPS, CPU_BASIS)
    else:
        basis = "the throughput given"
    return Plan(targets, tflops, basis)


def _certified():
    from robustmia.training.methods import CERTIFIED

    return CERTIFIED


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2)
