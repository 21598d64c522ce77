"""The benchmark scripts run (at their smallest sizes) and print the JSON their documentation reads.
They measure speed on their own; here only that they work, so that a refactoring cannot break one unseen."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _bench(*args: str) -> dict:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_bench_gpu_runs_on_the_cpu():
    result = _bench("benchmarks/bench_gpu.py", "--device", "cpu", "--models", "wrn-16-1", "--batch-size", "2",
                    "--rounds", "1", "--warmup", "0", "--settings", "baseline,channels_last,bf16")["results"]["wrn-16-1"]
    assert set(result["images_per_second"]) == {"baseline", "channels_last", "bf16"}
    assert result["speedup_over_baseline"]["baseline"] == 1.0


def test_bench_fast_quick_on_the_cifar10_subset(shared_data, tmp_path):
    saved = tmp_path / "bench_fast.json"
    result = _bench("benchmarks/bench_fast.py", "--data-dir", str(shared_data), "--models", "fast-cnn,small-cnn", "--quick",
                    "--out", str(saved))
    assert json.loads(saved.read_text()) == result and result["complete"]
    assert set(result["models"]) == {"fast-cnn", "small-cnn"} and result["matmul_peak_gflops"] > 0
    # adv-train accuracy is measured on the run's own members (a split draws them at random: the first
    # images of the training split would be mostly non-members, and the "gap" a test-set figure)
    for entry in result["models"].values():
        assert entry["pgd"]["adv_train_probe"] == {"images": 20, "members": 20}
    references = result["target_plus_references_s"]
    assert references["models_trained"] == 3 and len(references["per_model_s"]) == 3
    assert references["seconds"] >= sum(references["per_model_s"]) - 0.1
    for model, entry in result["models"].items():
        for kind, key in (("natural", "test_accuracy"), ("pgd", "adv_train_accuracy")):
            e = entry[kind]
            assert e["flops_per_image"] > 0 and 0 < e["fraction_of_peak"], (model, kind, e)
            for run in e["runs"]:
                seconds = [f["seconds"] for f in run["per_epoch"]]
                assert seconds == sorted(seconds) and len(seconds) == e["epochs"]
                assert 0 <= run["final"][key] <= 1
        # the PGD-7 step costs more FLOPs than the natural one: the FLOP counter sees the attack's passes
        assert entry["pgd"]["flops_per_image"] > 4 * entry["natural"]["flops_per_image"], model
    assert result["fast_vs_small_natural_accuracy_same_budget"] == [
        result["models"][m]["natural"]["mean_final_test_accuracy"] for m in ("fast-cnn", "small-cnn")]


def test_bench_scale_stacked_section_alone():
    result = _bench("benchmarks/bench_scale.py", "--sections", "stacked", "--k", "2", "--epochs", "1")
    assert "parallel" not in result and result["stacked"]["k"] == 2
    for model in ("digits-mlp", "digits-cnn"):
        assert result["stacked"][model]["one_by_one_s"] > 0 and result["stacked"][model]["stacked_s"] > 0


def test_bench_scale_batchnorm_section_at_toy_size():
    result = _bench("benchmarks/bench_scale.py", "--sections", "batchnorm", "--k", "2", "--epochs", "1", "--members", "60")
    found = result["batchnorm"]
    assert found["k"] == 2 and found["model"] == "fast-cnn" and found["one_model_s"] > 0 and found["k_stacked_s"] > 0
    assert found["stack_in_units_of_one_model"] == pytest.approx(found["k_stacked_s"] / found["one_model_s"], rel=0.1)  # (of seconds rounded to 0.01)


def test_bench_plan_sets_the_plan_beside_the_measured_time():
    result = _bench("benchmarks/bench_plan.py", "--tiny", "--threads", "1")
    assert result["plan_flops"] > 0 and result["measured_s"] > 0 and result["estimate_s"] > 0
    assert result["estimate_over_measured"] == pytest.approx(result["estimate_s"] / result["measured_s"], rel=0.05)
    assert list(result["phases_s"]) == ["training", "evaluation and reference models", "audits", "one-run DP audits and results",
                                        "report"]
    assert set(result["targets"]) == {"natural", "pgd-0.05", "pgd-0.1", "pgd-0.15", "wong-natural", "crown-ibp-0.1"}


def test_bench_training_at_toy_size():
    found = _bench("benchmarks/bench_training.py", "--models", "wrn-10-1", "--rounds", "1", "--batch-size", "2")["results"]["wrn-10-1"]
    assert set(found["images_per_second"]) == {"natural", "pgd7", "trades10", "fgsm_rs", "torchattacks_pgd7"}
    assert found["pgd_over_natural"] > 1  # PGD-7 costs more than a natural step


def test_bench_certified_at_toy_size():
    found = _bench("benchmarks/bench_certified.py", "--rounds", "1", "--batch-size", "2")["results"]
    assert set(found) == {"wong-cnn 3x32x32", "wong-cnn 1x8x8"}
    assert all(v["images_per_second"]["convex_dual"] > 0 for v in found.values())


def test_bench_metrics_at_toy_size():
    found = _bench("benchmarks/bench_metrics.py", "--n", "1000", "--repeats", "1")
    assert found["n_examples"] == 1000 and found["robustmia_seconds"] >= 0


def test_bench_audit_at_toy_size(shared_data):
    found = _bench("benchmarks/bench_audit.py", "--data-dir", str(shared_data / "cifar10"), "--k", "4", "--epochs", "1", "--members", "40")
    assert found["setting"]["k"] == 4 and set(found["seconds"]) == {"bare", "audit", "scoring_every_epoch"}


def test_every_benchmark_starts_and_has_a_test_here():
    """A renamed import fails here, not in a user's hands: every script answers --help, and this file runs each."""
    here = (REPO / "tests" / "test_benchmarks.py").read_text()
    scripts = sorted((REPO / "benchmarks").glob("bench_*.py"))
    assert len(scripts) >= 8
    for script in scripts:
        done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0 and "usage:" in done.stdout, (script.name, done.stderr[-500:])
        assert f'"benchmarks/{script.name}"' in here.replace(f'"benchmarks/{script.name}", "--help"', ""), script.name


def test_benchmarks_refuse_bad_inputs_in_one_line(tmp_path):
    for args, says in ((("benchmarks/bench_scale.py", "--sections", "stacked,nope"), "--sections takes"),
                       (("benchmarks/bench_fast.py", "--kinds", "adv"), "--kinds takes"),
                       (("benchmarks/bench_fast.py", "--models", "fast-cnn,nope"), "--models takes"),
                       (("benchmarks/bench_gpu.py", "--device", "cpu", "--settings", "nope"), "--settings takes"),
                       (("benchmarks/bench_gpu.py", "--device", "nope"), "is no device"),
                       (("benchmarks/bench_fast.py", "--data-dir", str(tmp_path), "--quick"), "CIFAR-10 not found"),
                       (("benchmarks/bench_plan.py", "--preset", "nope"), "is no preset"),
                       (("benchmarks/bench_plan.py", "--threads", "0"), "--threads 0: give 1 or more"),
                       (("benchmarks/bench_scale.py", "--sections", "batchnorm", "--recipe", "nope"), "is no recipe"),
                       (("benchmarks/bench_scale.py", "--sections", "batchnorm", "--k", "1"), "--k 1: give 2 or more"),
                       (("benchmarks/bench_metrics.py", "--n", "0"), "--n 0: give 2 or more"),
                       (("benchmarks/bench_metrics.py", "--nope"), "unrecognized arguments: --nope"),
                       (("benchmarks/bench_training.py", "--models", "nope"), "--models takes"),
                       (("benchmarks/bench_training.py", "--rounds", "0"), "--rounds 0: give 1 or more"),
                       (("benchmarks/bench_certified.py", "--batch-size", "0"), "--batch-size 0: give 1 or more"),
                       (("benchmarks/bench_audit.py", "--k", "5"), "--k 5: give an even number"),
                       (("benchmarks/bench_audit.py", "--k", "2"), "--k 2: give 4 or more"),
                       (("benchmarks/bench_gpu.py", "--device", "cpu", "--models", "nope"), "--models takes"),
                       (("benchmarks/bench_fast.py", "--target", "2"), "--target 2.0: give an accuracy")):
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and done.stdout == "" and len(lines) == 1 and says in lines[0], (args, done.stderr)
