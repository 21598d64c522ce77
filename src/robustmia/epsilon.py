"""Perturbation sizes in pixel space, written as numbers or fractions ("8/255")."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BeforeValidator


def parse_fraction(value: Any) -> float:
    """``"8/255"`` -> 0.0313..., ``"0.1"`` -> 0.1, ``0.1`` -> 0.1; anything else (a nested fraction
    such as ``8/255/2``, NaN, infinity) raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"cannot read {value!r} as a number or fraction such as 8/255")
    if isinstance(value, str) and value.count("/") > 1:
        raise ValueError(f"{value!r} is a fraction of a fraction; write one fraction, e.g. 4/255 for 8/255/2")
    number = None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                num, den = text.split("/", 1)
                number = float(Fraction(num.strip()) / Fraction(den.strip()))
            else:
                number = float(text)
        except (ValueError, ZeroDivisionError):
            pass
    if number is None or not math.isfinite(number):
        raise ValueError(f"cannot read {value!r} as a finite number or fraction such as 8/255")
    return number


def _pixel_range(v: float) -> float:
    if not 0.0 <= v <= 1.0:
        raise ValueError("must lie in [0, 1]: pixels are in [0, 1], so write 8/255, not 8")
    return v


def _step_range(v: Optional[float]) -> Optional[float]:
    if v is not None and v <= 0:
        raise ValueError("must be positive")
    if v is not None and v > 1.0:
        raise ValueError("must lie in (0, 1]: pixels are in [0, 1], so write 2/255, not 2")
    return v


# an epsilon in pixel units, given as a number or a fraction
Epsilon = Annotated[float, BeforeValidator(parse_fraction), AfterValidator(_pixel_range)]
# a step size, likewise; None means "the method's default"
StepSize = Annotated[Optional[float], BeforeValidator(lambda v: None if v is None else parse_fraction(v)), AfterValidator(_step_range)]
