"""The settings of a membership audit, validated without numerical libraries (the CLI's
``robustmia attack`` options and a study spec's ``audit`` block are the same object)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from robustmia.epsilon import Epsilon, StepSize
from robustmia.privacy.attacks.registry import ATTACKS, check_references, default_attacks, needs_references
from robustmia.robust.bound_names import bound_name


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    attacks: list[str] = Field(default_factory=default_attacks)
    threshold: Literal["oracle", "shadow", "both"] = "oracle"
    per_class: bool = False
    references: int = Field(default=16, ge=2, le=4096)
    eval_size: Optional[int] = Field(default=None, ge=1, le=10**9)
    population: int = Field(default=2000, ge=0, le=10**8)
    eps: Optional[Epsilon] = None
    attack_steps: int = Field(default=20, ge=1, le=10_000)
    step_size: StepSize = None
    bootstrap: int = Field(default=1000, ge=0, le=1_000_000)
    permutations: int = Field(default=1000, ge=0, le=1_000_000)  # the permutation null of each inference accuracy (chance)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    # reference models train in stacks of up to this many at once where that pays off
    # (robustmia.training.stacked); 1 trains them one by one. The stacks are also the units a
    # Ray cluster spreads over its workers.
    stack_references: int = Field(default=16, ge=1, le=4096)
    # the probes of the label-only and white-box attacks (robustmia.privacy.probes)
    boundary_bisections: int = Field(default=7, ge=1, le=64)  # bisection steps of the boundary-distance search
    probe_steps: int = Field(default=10, ge=1, le=10_000)  # PGD steps per radius of the search, and of label-adv
    noise_draws: int = Field(default=32, ge=1, le=100_000)  # random perturbations of label-noise
    adv_restarts: int = Field(default=4, ge=1, le=1000)  # PGD runs from random starts of label-adv
    bound: bound_name(allow_none=False) = "crown"  # the certified bound of the verified-margin attacks
    delta: float = Field(default=1e-5, gt=0, lt=1)  # the delta of each attack's empirical epsilon lower bound

    @field_validator("attacks", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [a.strip() for a in v.split(",") if a.strip()] if isinstance(v, str) else v

    @field_validator("attacks")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [a for a in v if a not in ATTACKS]
        if unknown or not v:
            raise ValueError(f"unknown attack {', '.join(unknown) or '(none given)'}; choose from: {', '.join(ATTACKS)}")
        return v

    @model_validator(mode="after")
    def _enough_references(self):
        check_references(self.attacks, self.references)
        return self

    def check_drawn_references(self, where: str = "audit settings") -> None:
        """Reference models robustmia trains (rather than ones the user supplies with their keep masks) are
        drawn so that every example is in exactly half of them: their number must be even."""
        from robustmia.errors import UserError

        if self.references % 2 and any(needs_references(a, self.threshold) for a in self.attacks):
            raise UserError(f"{where}: references must be even (got {self.references}): every example is in exactly half "
                            "the reference models robustmia trains")
