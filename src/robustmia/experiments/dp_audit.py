"""One-run DP audits of a run trained with canaries (data.canaries; Steinke, Nasr & Jagielski 2023).

A run whose config names ``canaries`` trained once on its members plus the canaries whose fair coins
came up heads. Here every canary is scored by the attacks (reference-based ones included: reference
model j trains on the run's members plus the canaries of its own keep mask, drawn independently of the
coins, so the references are as large as the target), and each attack's scores give Steinke et al.'s
lower bound on the epsilon of any (epsilon, delta)-DP guarantee the recipe could have
(privacy.dp_audit). Unlike the per-run figures of an ordinary audit, this bound is valid: the coins are
the random trials. For a DP run it must stay below the accountant's epsilon; for any other run it says
how much privacy the recipe certainly does not have.

    RUN_DIR/dp-audit/m<count>-<kind>-seed<S>/   attacks.json (each record with its dp_audit block), scores.npz
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from robustmia.errors import UserError

DP_AUDIT_FOLDER = "dp-audit"


class OneRunSettings(BaseModel):
    """How the guesses are made and judged: ``k`` = (k_pos, k_neg) fixed in advance, or None for the grid of
    privacy.dp_audit (its confidence split by Bonferroni); ``delta`` None: the run's dp_delta (1e-5 for a
    run that is not DP)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    k: Optional[tuple[int, int]] = None
    confidence: float = Field(default=0.95, gt=0, lt=1)
    delta: Optional[float] = Field(default=None, ge=0, lt=1)

    @field_validator("k")
    @classmethod
    def _guesses(cls, v: Optional[tuple[int, int]]) -> Optional[tuple[int, int]]:
        if v is not None and (min(v) < 0 or sum(v) < 1):
            raise ValueError(f"k_pos and k_neg must be at least 0 and guess at least once together (got {v[0]},{v[1]})")
        return v

    def check_canaries(self, count: int, where: str = "--k") -> None:
        """The guesses fit the canaries: refused before anything trains or is scored."""
        if self.k is not None and sum(self.k) > count:
            raise UserError(f"{where}: k_pos + k_neg = {sum(self.k)} guesses, but there are {count} canaries; guess fewer")


def canary_target(run: Any, settings: Any):
    """What the audit of a run's canaries reads (experiments.audit.AuditTarget): the candidates and their coins,
    a population from the pools that no model trains on, and the run's members as every reference's fill."""
    from robustmia.data.canaries import draw
    from robustmia.data.datasets import ImageSet, load_dataset
    from robustmia.experiments.audit import AuditTarget, checkpoint_key, population_size
    from robustmia.seeding import derive_seed
    from robustmia.training.methods import DP

    config = run.config
    if config.canaries is None:
        raise UserError(f"{run.path} was trained without canaries, so a one-run DP audit has nothing to score; train it with "
                        "--set 'canaries={count: 1000, kind: mislabelled}' (kinds: natural, mislabelled, noise)")
    train_set, test_set = load_dataset(config.dataset, config.data_dir)
    split = run.split
    candidates, coins = draw(config.canaries, train_set, split.pool_train, run.info.num_classes, config.seed)
    pool = ImageSet.concat(train_set.subset(np.setdiff1d(split.pool_train, candidates.ids.numpy())), test_set.subset(split.pool_test))
    rng = np.random.default_rng(derive_seed(settings.seed, 12))
    take = np.sort(rng.permutation(len(pool))[: population_size(settings)])
    c = config.canaries
    return AuditTarget(
        folder=run.path / DP_AUDIT_FOLDER / f"m{c.count}-{c.kind}-seed{c.seed}", points=run.path, load_model=run.load_model,
        candidates=candidates, member=coins, population=pool.subset(take) if len(take) else None, eps=config.eps, recipe=config,
        eval_batch_size=config.eval_batch_size, model_key=checkpoint_key(run.path),
        about={"run": str(run.path), "canaries": c.model_dump(), "coins": {"included": int(coins.sum()), "of": len(coins)},
               **({"checkpoint": run.trained} if run.trained else {}),
               **({"warnings": [run.progress_warning()]} if run.progress_warning() else {})},
        dp_delta=config.dp_delta if config.method in DP else None, reference_fill=train_set.subset(split.members),
        shortfall="pass a smaller --population, or train with fewer canaries",
    )


def accountant_epsilon(run: Any) -> Optional[float]:
    """A DP run's epsilon from its accountant at the end of training (its log's last record), else None."""
    from robustmia.io import read_jsonl
    from robustmia.training.run import LOG_FILE

    records = read_jsonl(run.path / LOG_FILE, f"delete {run.path} to train it again")
    return records[-1].get("dp_epsilon") if records else None


def dp_audit(run: Any, settings: Any, one_run: OneRunSettings, *, device: str = "auto", progress: Any = None):
    """Score the run's canaries with every attack of ``settings`` and give each record its one-run bounds
    (``dp_audit``: Steinke et al.'s epsilon bound, its confidence, m, k_pos, k_neg, guesses, correct guesses; ``gdp``: the
    largest mu of mu-GDP refuted and its epsilon at delta; ``family_bound``: both again with the confidence split over
    the audit's attacks, so that their largest holds at the confidence stated (privacy.dp_audit.headline); the canaries,
    and the accountant's epsilon and its mu where there is one). Saved in the run's dp-audit folder; returns the
    AuditResult."""
    from robustmia.experiments.audit import Audit
    from robustmia.privacy.dp_audit import one_run_bound
    from robustmia.privacy.gdp import mu_of_epsilon

    if run.config.canaries is not None:  # (before the dataset is read: canary_target refuses a run without canaries)
        one_run.check_canaries(run.config.canaries.count)
    target = canary_target(run, settings)
    delta = one_run.delta if one_run.delta is not None else (target.dp_delta if target.dp_delta is not None else 1e-5)
    result = Audit(target, settings, device=device, progress=progress).run_attacks()
    accountant = accountant_epsilon(run)
    accountant_mu = mu_of_epsilon(accountant, run.config.dp_delta) if accountant is not None else None  # (at its own delta)
    tests = len(result.attacks)  # each attack (and threshold selection) is one more test of the same run
    for a in result.attacks:
        own = one_run_bound(a.scores, target.member, delta=delta, confidence=one_run.confidence, k=one_run.k)
        family = own if tests == 1 else one_run_bound(a.scores, target.member, delta=delta, confidence=one_run.confidence,
                                                      k=one_run.k, family=tests)
        a.details["dp_audit"] = {**own, "attack": a.attack, "canaries": run.config.canaries.kind, "accountant_epsilon": accountant,
                                 "accountant_mu": accountant_mu,
                                 "family_bound": {"attacks": tests, "epsilon_lower_bound": family["epsilon_lower_bound"],
                                                  "mu_lower_bound": family["gdp"]["mu_lower_bound"],
                                                  "epsilon_at_delta": family["gdp"]["epsilon_at_delta"], "selection": family["selection"]}}
    result.save(target.folder, merge=True)
    return result
