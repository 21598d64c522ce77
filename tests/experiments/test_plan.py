"""The planning mode (experiments.plan): FLOPs counted from one step of the recipe's own objective, each part as
the module says, shared runs counted once, datasets without their files at their standard sizes, and the CLI."""

from __future__ import annotations

import json

import pytest

from robustmia.experiments.plan import CPU_TFLOPS, GPU_TFLOPS, plan_study, step_flops
from robustmia.experiments.spec import StudySpec
from robustmia.training.config import TrainConfig
from tests.conftest import cli


def _spec(targets, **over):
    return StudySpec.model_validate({"targets": targets, "audit": {"attacks": ["confidence", "loss"], "eval_size": 100}, **over})


def test_a_step_costs_what_its_passes_do():
    natural = TrainConfig(model="digits-cnn")
    forward, step = step_flops(natural)
    assert forward > 0 and step == pytest.approx(3 * forward, rel=0.05)  # forward, then backward (inputs and weights)
    pgd = TrainConfig(model="digits-cnn", method="pgd", eps=0.1, attack_steps=5)
    forward_pgd, step_pgd = step_flops(pgd)
    assert forward_pgd == forward
    # each attack step: a forward pass and a backward pass to the input (no weight gradients) ...
    assert step_pgd == pytest.approx(step + 5 * 2 * forward, rel=0.1)
    # ... so more steps cost more, in proportion
    assert step_flops(pgd.model_copy(update={"attack_steps": 10}))[1] > step_pgd


def test_each_part_is_counted_as_documented_and_a_shared_run_once():
    configs = {"a": TrainConfig(model="digits-cnn", train_size=200, epochs=4, eval_every=0),
               "b": TrainConfig(model="digits-cnn", train_size=200, epochs=4, eval_every=0)}  # the same run
    spec = _spec([{"name": "a"}, {"name": "b"}])
    plan = plan_study(spec, configs, gpu=False)
    a, b = plan.targets
    forward, step = step_flops(configs["a"])
    assert a.parts["training"] == pytest.approx(step * 200 * 4) and b.parts["training"] == 0
    assert a.parts["tracking"] == 0 and "references" not in a.parts  # no track_every, no attack needs references
    assert a.parts["evaluation"] == pytest.approx((200 + 200) * forward)  # natural: a forward pass over members and test images
    assert a.parts["audit"] == pytest.approx(2 * 100 * forward)
    assert plan.tflops == CPU_TFLOPS and plan.seconds(plan.total) == pytest.approx(plan.total / (CPU_TFLOPS * 1e12))
    assert plan_study(spec, configs, gpu=True).tflops == GPU_TFLOPS and plan_study(spec, configs, tflops=3.0).tflops == 3.0


def test_reference_models_and_tracking_are_counted():
    configs = {"t": TrainConfig(model="digits-cnn", method="pgd", eps=0.1, train_size=200, epochs=4, eval_every=0)}
    spec = StudySpec.model_validate({"targets": [{"name": "t"}], "track_every": 2,
                                     "audit": {"attacks": ["confidence", "lira"], "references": 4, "eval_size": 100}})
    t = plan_study(spec, configs, gpu=False).targets[0]
    forward, step = step_flops(configs["t"])
    # each reference model trains on half the evaluated examples plus unscored ones, up to the target's 200 members
    assert t.parts["references"] == pytest.approx(4 * step * 200 * 4)
    assert t.parts["tracking"] == pytest.approx(2 * 2 * 200 * forward * 23)  # 2 tracked epochs, PGD-10 on 200 + 200


def test_the_cli_prints_each_target_and_the_total_and_refuses_what_goes_with_plan_alone(tmp_path):
    r = cli("reproduce", "quick", "--plan")
    assert r.returncode == 0, r.stderr
    for name in ("natural", "pgd-0.05", "pgd-0.1", "pgd-0.15", "wong-natural", "crown-ibp-0.1"):
        assert name in r.stdout
    assert "total" in r.stdout and "TFLOP/s" in r.stdout and not (tmp_path / "runs").exists()
    r = cli("reproduce", "quick", "--plan", "--json", "--throughput", "2")
    found = json.loads(r.stdout)
    assert found["throughput_tflops"] == 2 and len(found["targets"]) == 6
    assert found["estimated_seconds"] == pytest.approx(found["total_flops"] / 2e12, abs=0.1)
    for args, says in ((("reproduce", "quick", "--throughput", "2"), "--throughput goes with --plan"),
                       (("reproduce", "quick", "--plan", "--throughput", "-1"), "--throughput -1.0"),
                       (("run", "spec.yaml"), "name the study folder with --out")):
        r = cli(*args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, (args, r.stderr)


def test_a_gpu_preset_is_planned_without_its_data_at_the_datasets_standard_sizes(tmp_path):
    r = cli("reproduce", "paper-gpu", "--plan", "--json", "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert found["throughput_tflops"] == GPU_TFLOPS  # the preset is meant for a GPU
    assert {t["members"] for t in found["targets"]} == {50_000}  # every training image of CIFAR-10 a member
