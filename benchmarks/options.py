"""What the benchmarks' command lines share: comma-separated choices, a CUDA device that must exist, and one
line on standard error with exit code 2 for every input a user can get wrong (as robustmia's own CLI does).

The benchmarks run as scripts (``python benchmarks/bench_fast.py``), so they import this module by its name.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable, NoReturn

import torch

from robustmia.errors import UserError


def refuse(bench: str, message: str) -> NoReturn:
    print(f"{bench}: {message}", file=sys.stderr)
    raise SystemExit(2)


def choices(bench: str, flag: str, value: str, allowed: Iterable[str]) -> list[str]:
    """``value`` split at commas, in its order; refused unless each is one of ``allowed``."""
    allowed = list(allowed)
    names = value.split(",")
    if any(name not in allowed for name in names):
        refuse(bench, f"{flag} takes a comma-separated list of {', '.join(allowed)}, not {value!r}")
    return names


def device(bench: str, name: str, instead: str) -> torch.device:
    """The device ``name``; a CUDA one is refused where no CUDA GPU is (``instead`` says what to do)."""
    try:
        chosen = torch.device(name)
    except RuntimeError:
        refuse(bench, f"--device {name!r} is no device; pass cpu, cuda or cuda:N")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        refuse(bench, f"no CUDA GPU here; run it on a GPU machine ({instead})")
    return chosen


def run(bench: str, main: Callable[[], None]) -> None:
    """Run a benchmark's ``main``; robustmia's own refusals (a missing dataset, a bad recipe) end in one line."""
    try:
        main()
    except UserError as e:
        refuse(bench, str(e))
