"""The planning mode's estimate beside the measured time, side by side in one run.

A preset (default ``quick``) is planned (``robustmia reproduce NAME --plan``: experiments.plan) and then run
on this machine, one task at a time with ``--threads`` threads (default 2), so that one throughput figure
describes the whole machine. Reported:

- the plan's FLOPs and its estimate at the stated CPU throughput (experiments.plan.CPU_TFLOPS), and the
  measured wall time of the study (training, evaluation, audits and report), with their ratio;
- the throughput this machine reached on the study's own work (the plan's FLOPs over the measured time),
  and each phase's seconds from the study's log.

Target: the estimate within a factor of 2 of the measured time (a plan tells an hour from a day, not a
minute from two).

    python benchmarks/bench_plan.py [--preset quick] [--data-dir DIR] [--threads 2] [--tiny]

``--tiny`` plans and runs the preset's tiny twin (the tests do).
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

import options


def main() -> None:
    parser = options.parser("bench_plan", __doc__)
    parser.add_argument("--preset", default="quick", help="a preset's name (robustmia reproduce --list)")
    parser.add_argument("--data-dir", default=None, help="folder holding the preset's dataset (e.g. ../shared/data)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the study's one task at a time")
    parser.add_argument("--tiny", action="store_true", help="the preset's tiny twin (seconds)")
    args = parser.parse_args()
    options.at_least("bench_plan", args, threads=1)
    from robustmia import api
    from robustmia.experiments.presets import list_presets

    if args.preset not in list_presets():
        options.refuse("bench_plan", f"--preset {args.preset!r} is no preset; choose one of {', '.join(list_presets())}")
    plan = api.plan_study(args.preset, data_dir=args.data_dir, tiny=args.tiny, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "study"
        started = time.perf_counter()
        api.run_study(args.preset, out, data_dir=args.data_dir, device="cpu", workers=1, threads=args.threads, tiny=args.tiny)
        seconds = time.perf_counter() - started
        phases = {p["name"]: p["seconds"] for p in json.loads((out / "phases.json").read_text())["phases"]}
    estimate = plan.seconds(plan.total)
    print(json.dumps({
        "preset": args.preset + (" (tiny twin)" if args.tiny else ""), "machine": platform.processor() or platform.machine(),
        "threads": args.threads, "plan_flops": plan.total, "stated_tflops": plan.tflops, "estimate_s": round(estimate, 1),
        "measured_s": round(seconds, 1), "estimate_over_measured": round(estimate / seconds, 3),
        "achieved_tflops": round(plan.total / seconds / 1e12, 4), "phases_s": phases,
        "targets": {t.name: {"flops": t.total, "estimate_s": round(plan.seconds(t.total), 1)} for t in plan.targets},
    }, indent=2))


if __name__ == "__main__":
    options.run("bench_plan", main)
