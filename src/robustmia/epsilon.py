"""Perturbation sizes in pixel space, written as numbers or fractions ("8/255")."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BeforeValidator


def parse_fraction(value: Any) -> float:
    """``"8/255"`` -> 0.0313..., ``"0.1"`` -> 0.1, ``0.1`` -> 0.1; anything else raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"cannot read {value!r} as a number or fraction such as 8/255")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                num, den = text.split("/", 1)
                return float(Fraction(num.strip()) / Fraction(den.strip()))
            return float(text)
        except (ValueError, ZeroDivisionError):
            pass
    raise ValueError(f"cannot read {value!r} as a number or fraction such as 8/255")


def _pixel_range(v: float) -> float:
    if not 0.0 <= v <= 1.0:
        raise ValueError("must lie in [0, 1]: pixels are in [0, 1], so write 8/255, not 8")
    return v


def _positive(v: Optional[float]) -> Optional[float]:
    if v is not None and v <= 0:
        raise ValueError("must be positive")
    return v


# an epsilon in pixel units, given as a number or a fraction
Epsilon = Annotated[float, BeforeValidator(parse_fraction), AfterValidator(_pixel_range)]
# a step size, likewise; None means "the method's default"
StepSize = Annotated[Optional[float], BeforeValidator(lambda v: None if v is None else parse_fraction(v)), AfterValidator(_positive)]
