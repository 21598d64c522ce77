"""What the benchmarks' command lines share: one parser (:func:`parser`) whose mistakes, and robustmia's own refusals,
end in one line on standard error with exit code 2 (as robustmia's own CLI does, never argparse's usage block);
sizes that must be positive, comma-separated choices and a CUDA device that must exist.

The benchmarks run as scripts (``python benchmarks/bench_fast.py``), so they import this module by its name.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Iterable, NoReturn

import torch

from robustmia.errors import UserError


def refuse(bench: str, message: str) -> NoReturn:
    print(f"{bench}: {message}", file=sys.stderr)
    raise SystemExit(2)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own mistakes (an unknown flag, a number that is not one)
        refuse(self.prog, f"{message}; see --help")


def parser(bench: str, doc: str) -> argparse.ArgumentParser:
    """The benchmark's argument parser: its description the docstring's first paragraph, its mistakes one line."""
    return _Parser(prog=bench, description=doc.strip().split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)


def at_least(bench: str, args: Any, **least: float) -> None:
    """Refuse any of ``args``' named numbers below its least value (``at_least(bench, args, rounds=1, n=2)``)."""
    for name, bound in least.items():
        value = getattr(args, name)
        if value is not None and value < bound:
            refuse(bench, f"--{name.replace('_', '-')} {value}: give {bound:g} or more")


def models(bench: str, value: str) -> list[str]:
    """``--models``: robustmia architectures, comma-separated (wrn-D-K for any depth D and width K)."""
    from robustmia.models import MODELS
    from robustmia.models.names import check_model_name

    names = [n.strip() for n in value.split(",")]
    for name in names:
        try:
            check_model_name(name)
        except UserError:
            refuse(bench, f"--models takes a comma-separated list of {', '.join(MODELS)} (wrn-D-K: any depth and width), not {name!r}")
    return names


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
