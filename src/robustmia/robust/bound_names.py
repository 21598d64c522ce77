"""The certified bounds robustmia computes, by name: the one list that the CLI, study specs and
robustmia.robust.bounds read. Importable without numerical libraries (spec validation)."""

from robustmia.errors import UserError

BOUNDS: dict[str, str] = {
    "crown": "CROWN with IBP-tightened intermediate bounds, never looser than IBP (the default)",
    "wong-kolter": "the exact dual of Wong & Kolter's convex outer polytope",
    "crown-ibp": "CROWN-IBP: IBP intermediate bounds, CROWN at the output",
    "ibp": "interval bound propagation",
}
NO_BOUND = "none"  # skip verification


def check_bound(name: str, *, allow_none: bool = True) -> str:
    """``name`` if it names a bound (or ``none`` where allowed); else a one-line UserError."""
    if name in BOUNDS or (allow_none and name == NO_BOUND):
        return name
    raise UserError(f"unknown bound {name!r}; choose one of: {', '.join(BOUNDS)}{', none' if allow_none else ''}")


def bound_name(allow_none: bool):
    """A pydantic field type: a name of BOUNDS (or ``none`` where allowed), else a validation error."""
    from typing import Annotated

    from pydantic import AfterValidator

    def check(v: str) -> str:
        if v not in BOUNDS and not (allow_none and v == NO_BOUND):
            raise ValueError(f"unknown bound; choose one of: {', '.join(BOUNDS)}{', ' + NO_BOUND if allow_none else ''}")
        return v

    return Annotated[str, AfterValidator(check)]
