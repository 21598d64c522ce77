"""The full recipe of one training run, validated. Flags and YAML files both land here."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from robustmia.data.canaries import Canaries
from robustmia.epsilon import Epsilon, StepSize
from robustmia.training.methods import (ADVERSARIAL, CERTIFIED, DP, METHODS, PRIVATE_SETTINGS, check_config, method_settings,
                                        method_spec, settings_read)
from robustmia.models.names import check_arguments
from robustmia.training.schedule import parse_drops

DEFAULT_EPOCHS = 30


MAX_SEED = 2**63 - 1
MIN_HOLDOUT = 10  # the fewest held-out images early stopping scores


class TrainConfig(BaseModel):
    # NaN and infinity are refused in every float (an lr of inf trains a NaN model)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dataset: str = "digits"
    data_dir: Optional[str] = None
    model: str = "digits-cnn"
    model_args: dict[str, Any] = Field(default_factory=dict)  # keyword arguments of the architecture (e.g. fast-cnn's widths)
    method: str = "natural"
    method_args: dict[str, Any] = Field(default_factory=dict)  # a registered method's own settings (training.methods)
    epochs: Optional[int] = Field(default=None, ge=1, le=1_000_000)
    iterations: Optional[int] = Field(default=None, ge=1, le=10**10)
    batch_size: int = Field(default=128, ge=1, le=1 << 20)
    lr: float = Field(default=0.05, gt=0, le=100)
    lr_drops: list[tuple[int, float]] = Field(default_factory=list)
    lr_unit: Literal["epoch", "iteration"] = "epoch"
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=5e-4, ge=0, le=1)
    augment: Literal["auto", "none", "crop-flip", "flip-translate"] = "auto"
    train_size: Optional[int] = Field(default=None, ge=1, le=10**9)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    eval_batch_size: int = Field(default=500, ge=1, le=1 << 20)
    # the pieces of fast recipes (airbench, hlb-CIFAR10): label smoothing of the training loss, Nesterov momentum,
    # the lr schedule (piecewise: lr and lr_drops; onecycle: linear up from 0 to lr over the first lr_warmup of
    # training, then linearly down to 0; linear: down from lr to 0), and lookahead (every ``lookahead`` steps the
    # slow weights move lookahead_alpha of the way to the fast ones, which restart from them; training ends on them)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    nesterov: bool = False
    lr_schedule: Literal["piecewise", "onecycle", "linear"] = "piecewise"
    lr_warmup: float = Field(default=0.2, ge=0, lt=1)
    lookahead: Optional[int] = Field(default=None, ge=1, le=10_000)
    lookahead_alpha: float = Field(default=0.5, gt=0, le=1)
    # the training-time attack of the adversarial methods (pgd, trades, fgsm_rs); see objectives.py
    eps: Epsilon = 0.0
    attack_steps: Optional[int] = Field(default=None, ge=1, le=10_000)
    step_size: StepSize = None
    random_start: bool = True
    attack_mode: Optional[Literal["train", "eval"]] = None
    trades_beta: float = Field(default=6.0, gt=0, le=1e6)
    # certified methods (convex_dual, ibp, crown_ibp): eps grows linearly from 0 to eps between
    # these fractions of training; kappa (weight of the clean loss) moves from start to end
    ramp_start: float = Field(default=0.0, ge=0, le=1)
    ramp_end: float = Field(default=0.5, ge=0, le=1)
    kappa_start: Optional[float] = Field(default=None, ge=0, le=1)
    kappa_end: Optional[float] = Field(default=None, ge=0, le=1)
    # convex_dual: estimate the intermediate bounds with this many random Cauchy projections
    # (Wong et al. 2018 used 50 for their larger networks); None = exact
    projections: Optional[int] = Field(default=None, ge=2, le=100_000)
    # GPU speed (see training/loop.py): bf16 autocast of the training step changes the arithmetic, so
    # it is part of the recipe; channels_last and torch.compile only change how it is computed
    amp: Literal["off", "bf16"] = "off"
    channels_last: bool = False
    compile: bool = False
    # bookkeeping that leaves the weights alone: the test split is scored every ``eval_every``
    # epochs and after the last (0: never; reference models log none), and a checkpoint is
    # written every ``checkpoint_every`` epochs and after the last (a kill -9 loses at most
    # that many epochs: a resume starts from the last checkpoint and drops later log lines)
    eval_every: int = Field(default=1, ge=0)
    checkpoint_every: int = Field(default=1, ge=1)
    # DP-SGD (dpsgd, dp_pgd; training.private): noise multiplier, per-example clipping norm, the
    # accountant's delta, and what to do with BatchNorm layers (refuse, or replace by GroupNorm)
    dp_noise: float = Field(default=1.0, gt=0, le=1e4)
    dp_clip: float = Field(default=1.0, gt=0, le=1e6)
    dp_delta: float = Field(default=1e-5, gt=0, lt=1)
    dp_batchnorm: Literal["refuse", "groupnorm"] = "refuse"
    # early stopping on held-out PGD accuracy (Rice et al. 2020; training.early_stop)
    early_stop: bool = False
    early_stop_holdout: int = Field(default=200, ge=10, le=10**7)  # MIN_HOLDOUT
    early_stop_steps: int = Field(default=10, ge=1, le=10_000)
    # a one-run DP audit's candidates (data.canaries): each joins the members by its own fair coin
    canaries: Optional[Canaries] = None

    @field_validator("lr_drops", mode="before")
    @classmethod
    def _drops_from_text(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):  # YAML reads an unquoted 30:0.005 as a base-60 number
            raise ValueError(f"got the number {v!r}: write the drops as a quoted string (lr_drops: \"30:0.005\") or a list "
                             "([[30, 0.005]])")
        return parse_drops(v) if isinstance(v, str) else v

    @field_validator("lr_drops")
    @classmethod
    def _drops_increasing(cls, v: list[tuple[int, float]]) -> list[tuple[int, float]]:
        boundaries = [b for b, _ in v]
        if any(b < 1 for b in boundaries) or boundaries != sorted(set(boundaries)):
            raise ValueError("boundaries must be positive and strictly increasing")
        if any(lr <= 0 for _, lr in v):
            raise ValueError("learning rates must be positive")
        return v

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from robustmia.errors import UserError
        from robustmia.models.names import check_model_name

        try:
            check_model_name(v)
        except UserError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        if method_spec(v) is None:
            raise ValueError(f"unknown training method; choose one of: {', '.join(METHODS)}")
        return v

    @model_validator(mode="after")
    def _one_length(self) -> "TrainConfig":
        if self.epochs is not None and self.iterations is not None:
            raise ValueError("give epochs or iterations, not both")
        if (self.method in ADVERSARIAL or self.method in CERTIFIED) and self.eps <= 0:
            raise ValueError(f"method {self.method} needs eps > 0 (e.g. eps 8/255)")
        if self.early_stop and self.eps <= 0:
            raise ValueError("early_stop picks the epoch of best held-out PGD accuracy: it needs eps > 0")
        try:
            check_arguments(self.model, self.model_args)
        except ValueError as e:
            raise ValueError(f"model_args: {e}") from None
        own = method_spec(self.method).settings
        unknown = sorted(set(self.method_args) - set(own))
        if unknown:
            raise ValueError(f"method_args: method {self.method} has no setting {unknown[0]!r} "
                             f"({'it has ' + ', '.join(own) if own else 'it has none'})")
        if set(own) - set(self.method_args):  # its defaults, filled in (so that a run's config.json says them)
            object.__setattr__(self, "method_args", {**own, **self.method_args})
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        if self.ramp_end < self.ramp_start:
            raise ValueError("ramp_end must not come before ramp_start")
        return self

    def check(self, where: Optional[str] = None, data_present: bool = True) -> None:
        """What the config says about the data and the model that can be checked before anything is
        loaded: the dataset is where it says, train_size fits its train split (where the size can be
        told), and a certified method gets a network the bounds handle."""
        from robustmia.data.catalog import check_data_present, dataset_sizes
        from robustmia.errors import UserError
        from robustmia.models.names import CERTIFIABLE, uncertifiable_layers

        lead = f"{where}: " if where else ""
        try:
            if data_present:  # (not when it is about to be downloaded)
                check_data_present(self.dataset, self.data_dir)
        except UserError as e:
            raise UserError(f"{lead}{e}") from None
        sizes = dataset_sizes(self.dataset, self.data_dir) if data_present else None
        if sizes is not None and self.train_size is not None and self.train_size > sizes[0]:
            raise UserError(f"{lead}train_size {self.train_size} is larger than {self.dataset}'s train split ({sizes[0]} images)")
        check_config(self, sizes, lead)
        left = None if sizes is None else sizes[0] - (self.train_size or sizes[0])
        if self.canaries is not None and self.canaries.kind != "noise" and left is not None:
            if self.canaries.count > left:
                raise UserError(f"{lead}{self.canaries.count} {self.canaries.kind} canaries are drawn from the train split's images "
                                f"outside the members, but {self.dataset} leaves {left}: ask for fewer, a smaller train_size, or "
                                "noise canaries")
            left -= self.canaries.count  # (early stopping holds out none of them)
        if self.early_stop and left is not None and left < min(self.early_stop_holdout, MIN_HOLDOUT):
            raise UserError(f"{lead}early stopping scores held-out training-split images beyond the members, but {self.dataset} "
                            f"leaves {left} (at least {MIN_HOLDOUT} are needed): set a smaller train_size")
        if self.early_stop and left is not None and left < self.early_stop_holdout:
            from robustmia.errors import warn

            warn(f"{lead}early stopping holds out {left} images, not early_stop_holdout {self.early_stop_holdout}: the train split "
                 "has no more beyond the members")
        if self.method in CERTIFIED and self.model not in CERTIFIABLE:
            raise UserError(f"{lead}{self.method} cannot certify {self.model}: the bounds do not handle its "
                            f"{uncertifiable_layers(self.model)}; use one of {', '.join(CERTIFIABLE)}")

    def ignored(self, keys: Any) -> list[str]:
        """Which of ``keys`` (settings the user gave) this config's method never reads, e.g. ``dp_noise``
        on a natural run, ``trades_beta`` on a PGD run (the CLI warns about them)."""
        idle = method_settings() - settings_read(self.method)  # (the method's registration says what it reads)
        if not self.early_stop:
            idle |= {"early_stop_holdout", "early_stop_steps"}
        if not self.lr_drops or self.lr_schedule != "piecewise":
            idle.add("lr_unit")
        if self.lr_schedule != "piecewise":
            idle.add("lr_drops")
        if self.lr_schedule != "onecycle":
            idle.add("lr_warmup")
        if not self.lookahead:
            idle.add("lookahead_alpha")
        return sorted(k for k in keys if k in idle)

    def resolved_augment(self, dataset_default: str) -> str:
        return dataset_default if self.augment == "auto" else self.augment

    def identity(self) -> dict[str, Any]:
        """What determines the trained weights (so not where the data lies, nor how fast it is computed).
        ``amp``, the DP settings and early stopping count only where they act, so runs made before they
        existed keep their identity (and study hashes)."""
        exclude = {"data_dir", "eval_batch_size", "channels_last", "compile", "eval_every", "checkpoint_every"}
        exclude |= {"amp"} if self.amp == "off" else set()
        exclude |= set() if self.model_args else {"model_args"}
        exclude |= set() if self.method_args else {"method_args"}
        exclude |= set() if self.canaries else {"canaries"}
        recipe = {"label_smoothing": 0.0, "nesterov": False, "lr_schedule": "piecewise", "lookahead": None}
        exclude |= {k for k, default in recipe.items() if getattr(self, k) == default}
        exclude |= set() if self.lr_schedule == "onecycle" else {"lr_warmup"}
        exclude |= set() if self.lookahead else {"lookahead_alpha"}
        exclude |= set() if self.method in DP else set(PRIVATE_SETTINGS)
        exclude |= set() if self.early_stop else {"early_stop", "early_stop_holdout", "early_stop_steps"}
        return self.model_dump(mode="json", exclude=exclude)
