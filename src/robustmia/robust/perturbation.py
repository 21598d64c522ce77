"""How a model's robustness is measured: :class:`Perturbation` (PGD settings and the one rule for a
run's default eps). Validated without numerical libraries; the attack itself loads on use."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from robustmia.epsilon import Epsilon, StepSize


class Perturbation(BaseModel):
    """How a model's robustness is measured: PGD-``steps`` in eval mode at ``eps``, step ``eps/8``
    unless given (1/255 at 8/255, as in Madry et al.'s evaluation), optionally AutoAttack too.
    ``eps=None`` measures clean accuracy only. (Robustness "perturbations" here; membership
    "attacks" live in robustmia.privacy.)"""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    eps: Optional[Epsilon] = None
    steps: int = Field(default=20, ge=1, le=10_000)
    step_size: StepSize = None
    restarts: int = Field(default=1, ge=1, le=1000)
    random_start: bool = True
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    autoattack: bool = False

    @field_validator("eps", mode="before")
    @classmethod
    def _clean_only(cls, v: Any) -> Any:
        """``none`` and 0 both mean clean accuracy only."""
        return None if _means_clean(v) else v

    @model_validator(mode="after")
    def _autoattack_needs_eps(self) -> "Perturbation":
        if self.autoattack and self.eps is None:
            raise ValueError("AutoAttack needs an epsilon: pass --eps (e.g. 8/255); the model was trained with none")
        return self

    @classmethod
    def for_run(cls, run_eps: float, eps: Any = None, **options: Any) -> "Perturbation":
        """The one rule for a run: the given ``eps``, else the run's training eps (a natural run
        stores its robust twin's), else none (clean accuracy only). Options are validated."""
        from robustmia.validation import validate

        if eps is None and run_eps > 0:
            eps = run_eps
        elif _means_clean(eps):  # asked for explicitly: clean accuracy only, whatever the run's eps
            eps = None
        return validate(cls, {"eps": eps, **options}, "evaluation perturbation")

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else (self.eps or 0.0) / 8

    def describe(self) -> dict[str, Any]:
        return {"name": "pgd", "norm": "linf", "eps": self.eps, "alpha": self.alpha, "steps": self.steps,
                "restarts": self.restarts, "random_start": self.random_start, "mode": "eval", "seed": self.seed}

    def key(self) -> str:
        """A short name of these settings, for cache files."""
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:12]

    def pgd(self, model: Any, x: Any, y: Any, ids: Any = None) -> Any:
        """PGD points of a batch. With ``ids`` (see data.datasets.ImageSet) every example draws its
        random start from its own seed, so its point does not depend on the batch it came in."""
        import torch

        from robustmia.robust.pgd import pgd
        from robustmia.seeding import generator_draw, per_example_draw

        if ids is not None:
            draw = per_example_draw(self.seed, ids)
        else:
            draw = generator_draw(torch.Generator(device=x.device).manual_seed(self.seed))
        return pgd(model, x, y, eps=self.eps, alpha=self.alpha, steps=self.steps, random_start=self.random_start,
                   restarts=self.restarts, mode="eval", draw=draw)


def _means_clean(eps: Any) -> bool:
    """Whether an eps as given asks for no perturbation: ``none`` (any case) or the number 0 (``0``, ``0/255``)."""
    if isinstance(eps, str):
        text = eps.strip().lower()
        if text == "none":
            return True
        try:
            from robustmia.epsilon import parse_fraction

            return parse_fraction(text) == 0
        except ValueError:
            return False
    return isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps == 0
