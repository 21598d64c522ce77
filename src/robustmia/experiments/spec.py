"""Study specs: one validated YAML file describes a whole study.

```yaml
name: quick
description: the whole paper at toy scale
defaults: {dataset: digits, model: digits-cnn, epochs: 60, batch_size: 64, train_size: 300}
targets:
  - {name: natural, tables: [I, II], train: {method: natural, eps: 0.1}}
  - {name: pgd-0.1, tables: [I, II], train: {method: pgd, eps: 0.1}}
evaluation: {attack_steps: 20, bound: crown}
audit: {attacks: [confidence, loss, lira, rmia, shadow], threshold: both, references: 4}
track_every: 10
```

Every target's ``train`` block is merged over its ``recipe`` (if it names one) and the
``defaults``, and validated as a full training config. A target's ``audit`` block overrides the
study's audit settings for that target (e.g. more attacks). Top-level keys that start with ``x-``
are ignored: they hold YAML anchors that targets share. A target with an ``external`` block is a
model trained elsewhere (robustmia.experiments.external): its files are checked, nothing trains. Validation imports no deep-learning code, so a typo fails at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from robustmia.data.canaries import Canaries
from robustmia.epsilon import StepSize
from robustmia.errors import UserError
from robustmia.robust.bound_names import bound_name
from robustmia.experiments.external import ExternalTarget
from robustmia.experiments.settings import AuditSettings
from robustmia.training.config import TrainConfig
from robustmia.training.recipes import load_recipe
from robustmia.validation import describe_errors, read_yaml, validate


class DPAuditSpec(BaseModel):
    """A target's one-run DP audit (experiments.dp_audit): its canaries join the training set by fair coins,
    and ``attacks`` score them once it has trained (see experiments.dp_audit.OneRunSettings for the rest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    canaries: Canaries = Field(default_factory=Canaries)
    attacks: list[str] = Field(default_factory=lambda: ["confidence", "loss"])
    k: Optional[tuple[int, int]] = None
    confidence: float = Field(default=0.95, gt=0, lt=1)
    delta: Optional[float] = Field(default=None, ge=0, lt=1)

    @model_validator(mode="after")
    def _guesses_fit(self) -> "DPAuditSpec":
        if self.k is not None and (min(self.k) < 0 or sum(self.k) < 1):
            raise ValueError(f"k: k_pos and k_neg must be at least 0 and guess at least once together (got {list(self.k)})")
        if self.k is not None and sum(self.k) > self.canaries.count:
            raise ValueError(f"k: k_pos + k_neg = {sum(self.k)} guesses, but there are {self.canaries.count} canaries; guess fewer")
        return self

    def one_run(self):
        from robustmia.experiments.dp_audit import OneRunSettings

        return OneRunSettings(k=self.k, confidence=self.confidence, delta=self.delta)


class TargetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    tables: list[Literal["I", "II", "III"]] = Field(default_factory=lambda: ["I"])  # the paper's tables it appears in
    recipe: Optional[str] = None  # a named training recipe (robustmia recipes) under ``train``
    train: dict[str, Any] = Field(default_factory=dict)
    external: Optional[ExternalTarget] = None  # a model trained elsewhere, instead of recipe/train
    audit: dict[str, Any] = Field(default_factory=dict)  # this target's audit settings over the study's (e.g. more attacks)
    dp_audit: Optional[DPAuditSpec] = None  # train with canaries and give the recipe a valid one-run epsilon lower bound

    @model_validator(mode="after")
    def _external_alone(self) -> "TargetSpec":
        if self.external is not None and (self.recipe is not None or self.train):
            raise ValueError("an external target is trained elsewhere: give external, or recipe/train, not both")
        if self.external is not None and self.dp_audit is not None:
            raise ValueError("a one-run DP audit trains the target with its canaries: an external target cannot have one")
        return self


class EvaluationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attack_steps: int = Field(default=20, ge=1)
    step_size: StepSize = None
    restarts: int = Field(default=1, ge=1)
    bound: bound_name(allow_none=True) = "crown"  # a name of robustmia.robust.bound_names.BOUNDS, or none
    max_examples: Optional[int] = Field(default=None, ge=1)


class StudySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "study"
    description: str = ""
    defaults: dict[str, Any] = Field(default_factory=dict)
    targets: list[TargetSpec] = Field(min_length=1)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    track_every: Optional[int] = Field(default=None, ge=1)
    frontier: bool = False  # draw the privacy-robustness-accuracy frontier (reporting.frontier)
    needs_gpu: bool = False  # refused on a machine without a CUDA GPU unless --device cpu is given (a GPU preset)

    @model_validator(mode="after")
    def _unique_names(self) -> "StudySpec":
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique, got {names}")
        return self

    def dp_audit_for(self, target: TargetSpec, where: str = "spec") -> AuditSettings:
        """The audit settings of a target's one-run DP audit: its own attacks, over the target's audit settings."""
        merged = {**self.audit_for(target, where).model_dump(exclude_unset=True), "attacks": target.dp_audit.attacks}
        return validate(AuditSettings, merged, f"{where}: target {target.name}: dp_audit")

    def audit_for(self, target: TargetSpec, where: str = "spec") -> AuditSettings:
        """The audit settings of one target: its own ``audit`` block over the study's."""
        if not target.audit:
            return self.audit
        merged = {**self.audit.model_dump(exclude_unset=True), **target.audit}
        return validate(AuditSettings, merged, f"{where}: target {target.name}: audit")

    def train_configs(self, source: str, data_root: Optional[str] = None) -> dict[str, TrainConfig]:
        """Each target's validated config; ``data_root`` (a folder with one sub-folder per dataset,
        like ``$ROBUSTMIA_DATA_DIR``, or one dataset's own folder) overrides where the datasets lie."""
        configs = {}
        for i, t in enumerate(self.targets):
            if t.external is not None:
                continue
            where = f"{source}: targets.{i} ({t.name})"
            try:
                recipe = load_recipe(t.recipe) if t.recipe else {}
            except UserError as e:
                raise UserError(f"{where}: {e}") from None
            merged = {**self.defaults, **recipe, **t.train}
            if t.dp_audit is not None:
                merged["canaries"] = t.dp_audit.canaries.model_dump()
            if data_root is not None and merged.get("dataset", "digits") != "digits":
                merged["data_dir"] = str(data_root)  # the folder of dataset folders, or the dataset's own (data.catalog.resolve_root)
            configs[t.name] = validate(TrainConfig, merged, f"{where}.train")
        return configs


def load_spec(path: str | Path, data_dir: Optional[str] = None, allow_code: Optional[list[str]] = None,
              check_data: bool = True) -> tuple[StudySpec, dict[str, TrainConfig]]:
    """Read, validate and check a spec file: every problem is one line naming the file and the key.
    ``data_dir`` is a folder with one sub-folder per dataset (``cifar10/``, ``svhn/``); ``check_data``: whether
    the datasets must be there (not for a plan, which counts a missing dataset at its standard sizes). An external
    target's entry point (``arch: package.module:factory``) is refused unless its module is in
    ``allow_code`` or ``$ROBUSTMIA_ALLOW_CODE`` (robustmia.entry_points): a spec never runs code by itself."""
    from robustmia import entry_points

    data = read_yaml(path)
    if isinstance(data, dict):  # x-* keys hold YAML anchors (shared lists), as in docker-compose
        data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
    if data_dir is not None and isinstance(data, dict) and isinstance(data.get("targets"), list):
        for t in data["targets"]:  # --data-dir reaches external targets' datasets too, where they name none
            external = t.get("external") if isinstance(t, dict) else None
            if isinstance(external, dict) and external.get("dataset") not in (None, "digits") and external.get("data_dir") is None:
                t["external"] = {**external, "data_dir": str(data_dir)}
    spec = validate(StudySpec, data, str(path))
    configs = spec.train_configs(str(path), data_dir)
    for t in spec.targets:
        if t.dp_audit is not None:
            spec.dp_audit_for(t, str(path)).check_drawn_references(f"{path}: target {t.name}: dp_audit")
        if t.external is None or not t.external.reference_weights:
            spec.audit_for(t, str(path)).check_drawn_references(f"{path}: target {t.name}: audit")
        if t.external is not None:
            if entry_points.is_entry_point(t.external.arch):
                entry_points.check_allowed(t.external.arch, f"{path}: target {t.name}", entry_points.allowed_modules(allow_code))
                t.external.naming_code()
            try:
                t.external.check_files()
            except UserError as e:
                raise UserError(f"{path}: target {t.name}: {e}") from None
        else:
            configs[t.name].check(f"{path}: target {t.name}", data_present=check_data)
            if check_data:
                _check_population(spec.audit_for(t), configs[t.name], f"{path}: target {t.name}")
    return spec, configs


def _check_population(audit: AuditSettings, config: TrainConfig, where: str) -> None:
    """RMIA's population (examples no model trains on) must exist for the target's split, checked
    here rather than after every target has trained (where the dataset's sizes can be told early)."""
    from robustmia.data.catalog import dataset_sizes
    from robustmia.privacy.attacks import ATTACKS
    from robustmia.privacy.attacks.registry import they_need

    need = max((ATTACKS[a].population for a in audit.attacks), default=0)
    sizes = dataset_sizes(config.dataset, config.data_dir) if need else None
    if sizes is None:
        return
    n_train, n_test = sizes
    members = config.train_size or n_train
    nonmembers = min(members, n_test)
    evaluated = min(members, nonmembers, audit.eval_size or members)
    have = min(audit.population, (n_train - members) + (n_test - nonmembers) + (nonmembers - evaluated))
    if have < need:
        needing = [a for a in audit.attacks if ATTACKS[a].population]
        raise UserError(f"{where}: {they_need(needing)} at least {need} population examples that no model trains on, but this target "
                        f"leaves {have}: set audit.eval_size below {evaluated}, a smaller train_size, or a larger audit.population")


__all__ = ["AuditSettings", "EvaluationSpec", "StudySpec", "TargetSpec", "describe_errors", "load_spec"]
