"""What a membership audit gives back, as data: typed results that keep their per-example
scores, ROC curves and metrics, and are saved as plain files (JSON + npz).

- :class:`AttackResult`: one attack under one threshold selection: its scores (higher =
  member), the truth, the metrics (:class:`~robustmia.privacy.metrics.MembershipMetrics`)
  and how it was run (``details``: per-class thresholds, reference models, clean or PGD
  inputs and the perturbation that made them);
- :class:`AuditResult`: every attack on one target, with the target's loss and confidence
  on the evaluation set (the figures read them), the examples' ``ids`` (data.datasets.example_ids:
  the same image has the same id in every audit of a dataset's split), the most exposed members
  (``exposure``: their thumbnails and scores) and free-form ``about`` (provenance);
- :func:`run_attacks`: signals in, a list of :class:`AttackResult` out; the one entry point
  that the audit of a run, ``robustmia audit-scores`` and the Python API share.

A saved audit folder holds ``attacks.json`` (one record per result, the metrics as
:meth:`AttackResult.to_dict` gives them), ``scores.npz`` (``member``, ``ids``, ``signal__NAME``
and ``score__ATTACK__SELECTION``) and ``exposure.npz``; :meth:`AuditResult.load` reads it back
without any model or dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, conlist

from robustmia.io import atomic_write, read_json, write_json
from robustmia.privacy.attacks import AttackInputs, AttackScores, attack_spec, needs_references, run_attack
from robustmia.privacy.attacks.registry import selections
from robustmia.privacy.metrics import DELTA, MembershipMetrics, evaluate_scores, operating_points, oracle_per_group

ATTACKS_FILE, SCORES_FILE, EXPOSURE_FILE = "attacks.json", "scores.npz", "exposure.npz"
FIGURE_SIGNALS = ("loss", "confidence")  # what the report's figures read of the target
EXPOSURE_ATTACKS = ("lira", "rmia", "lira-offline", "rmia-offline", "lira-released")  # the first one run ranks exposure
EXPOSED = 16  # members shown as most exposed


class AttackRecord(BaseModel):
    """What a saved attack record must hold for the report to read it (types checked; more keys allowed)."""

    model_config = ConfigDict(extra="allow", strict=True)

    attack: str
    threshold_selection: str
    n_members: int = Field(ge=1)
    n_nonmembers: int = Field(ge=1)
    inference_accuracy: float
    precision: float
    recall: float
    threshold: Optional[float]
    auprc: float
    roc_auc: float
    advantage: float
    tpr_at_fpr: dict[str, float]
    kl_divergence: float
    kl_on: str
    ci95: dict[str, conlist(float, min_length=2, max_length=2)] = Field(default_factory=dict)
    chance: dict[str, Any] = Field(default_factory=dict)
    split_accuracy: Optional[float] = None
    n_bootstrap: int = 0
    epsilon_estimate_one_run: dict[str, Any] = Field(default_factory=dict)  # (earlier records: empirical_epsilon)


def check_records(records: Any, where: str, recover: str) -> list[dict[str, Any]]:
    """``records`` (a list of attack records read from a file), each checked; any fault is one line."""
    from robustmia.errors import UserError
    from robustmia.validation import describe_errors

    if not isinstance(records, list):
        raise UserError(f"{where}: the attack records are a {type(records).__name__}, not a list; {recover}")
    for i, record in enumerate(records):
        try:
            AttackRecord.model_validate(record)
        except ValidationError as e:
            raise UserError(f"{where}: attack record {i}: {describe_errors(e)}; {recover}") from None
    return records


@dataclass
class AttackResult:
    scores: np.ndarray
    member: np.ndarray
    metrics: MembershipMetrics
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def attack(self) -> str:
        return self.metrics.attack

    @property
    def threshold_selection(self) -> str:
        return self.metrics.threshold_selection

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        """The ROC curve ``(fpr, tpr)`` of the scores, one point per distinct score."""
        p = operating_points(self.scores.astype(np.float64), self.member)
        return p.fpr, p.tpr

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics.to_dict(), **self.details}

    def summary(self) -> str:
        return self.metrics.summary()


@dataclass
class AuditResult:
    attacks: list[AttackResult]
    member: np.ndarray
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    about: dict[str, Any] = field(default_factory=dict)
    ids: Optional[np.ndarray] = None
    exposure: Optional[dict[str, np.ndarray]] = None  # attack (0-d str), index (into the evaluation set), scores, images (k, H, W, C) uint8

    def get(self, attack: str, selection: str = "oracle") -> Optional[AttackResult]:
        return next((a for a in self.attacks if a.attack == attack and a.threshold_selection == selection), None)

    def records(self) -> list[dict[str, Any]]:
        return [a.to_dict() for a in self.attacks]

    def to_dict(self) -> dict[str, Any]:
        return {"about": self.about, "attacks": self.records()}

    def summary(self, columns: Optional[Sequence[str]] = None) -> str:
        """The audit as the CLI shows it (privacy.summary): a table led by each attack's calibrated accuracy, the notes
        on how every number was obtained, and the audit's warnings. ``columns``: a subset of privacy.summary.COLUMNS."""
        from robustmia.privacy.summary import summary_table, text_table

        names, rows, notes = summary_table(self.records())
        keep = _columns(names, columns)
        lines = [text_table([names[i] for i in keep], [[row[i] for i in keep] for row in rows]), *notes]
        lines += [f"warning: {w}" for w in self.about.get("warnings", [])]
        return "\n".join(lines)

    def to_frame(self, columns: Optional[Sequence[str]] = None):
        """The summary's table as a pandas DataFrame (the same columns as :meth:`summary`), the audit's warnings in its
        ``attrs``."""
        try:
            import pandas as pd
        except ImportError:
            from robustmia.errors import UserError

            raise UserError("to_frame needs pandas: pip install pandas") from None
        from robustmia.privacy.summary import summary_table

        names, rows, _ = summary_table(self.records())
        keep = _columns(names, columns)
        frame = pd.DataFrame([[row[i] for i in keep] for row in rows], columns=[names[i] for i in keep])
        frame.attrs["warnings"] = list(self.about.get("warnings", []))
        return frame

    def exposure_attack(self) -> Optional[AttackResult]:
        """The attack that ranks the members' exposure: the first of EXPOSURE_ATTACKS that was run."""
        return next((r for a in EXPOSURE_ATTACKS if (r := self.get(a)) is not None), None)

    def add_exposure(self, images: np.ndarray, k: int = EXPOSED) -> None:
        """Keep the ``k`` members the exposure attack scores highest, with their thumbnails (``images``:
        the evaluation set as (N, C, H, W) floats in [0, 1])."""
        ranked = self.exposure_attack()
        if ranked is None:
            return
        members = np.flatnonzero(self.member)
        top = members[np.argsort(-ranked.scores[members], kind="stable")[:k]]
        thumbs = (np.clip(np.asarray(images[top], dtype=np.float32), 0, 1) * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
        self.exposure = {"attack": np.array(ranked.attack), "index": top, "scores": ranked.scores[top], "images": thumbs}

    def merged_with(self, folder: Path) -> "AuditResult":
        """This audit with the records of the one saved in ``folder`` that it does not redo (another attack,
        or another threshold selection), when both scored the same examples; else this audit alone."""
        if not (folder / ATTACKS_FILE).is_file():
            return self
        from robustmia.errors import UserError

        try:
            old = AuditResult.load(folder)
        except UserError:
            return self  # a damaged earlier audit is replaced
        same = np.array_equal(old.member, self.member) and (old.ids is None or self.ids is None or np.array_equal(old.ids, self.ids))
        if not same:
            return self
        redone = {(a.attack, a.threshold_selection) for a in self.attacks}
        kept = [a for a in old.attacks if (a.attack, a.threshold_selection) not in redone]
        return AuditResult(kept + self.attacks, self.member, {**old.signals, **self.signals}, self.about,
                           self.ids if self.ids is not None else old.ids, self.exposure if self.exposure is not None else old.exposure)

    def save(self, folder: str | Path, merge: bool = False) -> Path:
        """Write the audit into ``folder``; with ``merge``, beside the records already saved there that it
        does not redo (see :meth:`merged_with`): repeated audits of one model accumulate their attacks."""
        folder = Path(folder)
        if merge:
            return self.merged_with(folder).save(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.exposure is not None:
            with atomic_write(folder / EXPOSURE_FILE) as f:
                np.savez(f, **self.exposure)
        else:
            (folder / EXPOSURE_FILE).unlink(missing_ok=True)
        arrays = {"member": self.member, **({"ids": self.ids} if self.ids is not None else {}),
                  **{f"signal__{k}": v for k, v in self.signals.items()}}
        arrays.update({f"score__{a.attack}__{a.threshold_selection}": a.scores for a in self.attacks})
        with atomic_write(folder / SCORES_FILE) as f:
            np.savez(f, **arrays)
        write_json(folder / ATTACKS_FILE, self.to_dict())
        return folder

    @classmethod
    def load(cls, folder: str | Path, recover: str = "run the audit again") -> "AuditResult":
        """A saved audit; any damage is one line naming the file and ``recover``."""
        from robustmia.errors import UserError

        folder = Path(folder)
        data = read_json(folder / ATTACKS_FILE, recover)
        if not isinstance(data, dict) or not isinstance(data.get("about", {}), dict):
            raise UserError(f"{folder / ATTACKS_FILE} is not an audit (an object with about and attacks); {recover}")
        check_records(data.get("attacks"), str(folder / ATTACKS_FILE), recover)
        try:
            with np.load(folder / SCORES_FILE, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            member = arrays["member"].astype(bool)
            result = cls._from(data, arrays, member)
            if (folder / EXPOSURE_FILE).is_file():
                with np.load(folder / EXPOSURE_FILE, allow_pickle=False) as z:
                    result.exposure = {k: z[k] for k in z.files}
            return result
        except Exception as e:
            raise UserError(f"the audit in {folder} is damaged ({type(e).__name__}: {e}); {recover}") from None

    @classmethod
    def _from(cls, data: dict[str, Any], arrays: dict[str, np.ndarray], member: np.ndarray) -> "AuditResult":
        signals = {k.removeprefix("signal__"): v for k, v in arrays.items() if k.startswith("signal__")}
        attacks = []
        for record in data["attacks"]:
            fields = set(MembershipMetrics.__dataclass_fields__)
            if "empirical_epsilon" in record and "epsilon_estimate_one_run" not in record:  # a record made before the rename
                from robustmia.privacy.metrics import epsilon_estimate

                record = {**{k: v for k, v in record.items() if k != "empirical_epsilon"}, "epsilon_estimate_one_run": epsilon_estimate(record)}
            metrics = MembershipMetrics(**{k: v for k, v in record.items() if k in fields})
            if metrics.threshold is None:
                metrics.threshold = float("inf")
            scores = arrays[f"score__{metrics.attack}__{metrics.threshold_selection}"]
            if scores.shape != member.shape:
                raise ValueError(f"{len(scores)} scores of {metrics.attack} for {len(member)} examples")
            if not metrics.calibrated and not (record.get("per_class") and metrics.threshold_selection == "oracle"):
                # a record made before the calibrated headline existed: computed from its saved scores (per-class oracle
                # scores were saved shifted by thresholds picked on the truth, so theirs cannot be)
                from robustmia.privacy.metrics import calibrated

                seed = int((data.get("about") or {}).get("settings", {}).get("seed", 0))
                given = None if metrics.threshold_selection == "oracle" else metrics.threshold
                metrics.calibrated = calibrated(scores.astype(np.float64), member, given, seed)
            attacks.append(AttackResult(scores, member, metrics, {k: v for k, v in record.items() if k not in fields}))
        return cls(attacks, member, signals, data.get("about", {}), arrays.get("ids"))


def _columns(names: Sequence[str], columns: Optional[Sequence[str]]) -> list[int]:
    """The positions of ``columns`` (all when None) among the summary's ``names``; an unknown one is a ValueError."""
    if columns is None:
        return list(range(len(names)))
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}; choose from: {', '.join(names)}")
    return [list(names).index(c) for c in columns]


def _checked_scores(name: str, inputs: AttackInputs, selection: str, per_class: bool, member: np.ndarray) -> AttackScores:
    """(``member`` only checks the scores' count.)"""
    """One attack's scores, checked to be one finite number per example; whatever a plugin's attack
    does wrong (raises, exits, returns the wrong thing) is one line naming the plugin and the attack."""
    from robustmia.entry_points import call_user_code
    from robustmia.errors import UserError

    spec = attack_spec(name)
    who = f"attack {name}" + (f" of the plugin {spec.plugin}" if spec.plugin else "")
    try:
        if spec.plugin:
            out = call_user_code(run_attack, who, name, inputs, selection=selection, per_class=per_class)
        else:
            out = run_attack(name, inputs, selection=selection, per_class=per_class)
    except ValueError as e:
        raise UserError(f"{who}: {e}") from None
    if not isinstance(out, AttackScores):
        raise UserError(f"{who} returned a {type(out).__name__}, not AttackScores(scores)")
    try:
        scores = np.asarray(out.scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{who} returned scores that are not numbers") from None
    if scores.shape != member.shape:
        raise UserError(f"{who} returned {scores.shape[0] if scores.ndim == 1 else scores.shape} scores for {len(member)} examples; "
                        "return one score per example")
    if not np.isfinite(scores).all():
        raise UserError(f"{who} returned {int((~np.isfinite(scores)).sum())} scores that are NaN or infinite; every score must be finite")
    if out.oracle_groups is not None and np.shape(out.oracle_groups) != member.shape:
        raise UserError(f"{who} returned oracle_groups for {np.size(out.oracle_groups)} examples, not {len(member)}")
    out.scores = scores
    return out


def run_attacks(
    inputs: AttackInputs,
    names: Sequence[str],
    member: np.ndarray,
    *,
    selection: str = "oracle",
    per_class: bool = False,
    bootstrap: int = 1000,
    seed: int = 0,
    n_references: int = 0,
    perturbation: Optional[dict[str, Any]] = None,
    probes: Optional[Callable[[str], dict[str, Any]]] = None,
    delta: float = DELTA,
    permutations: int = 0,
) -> list[AttackResult]:
    """Run each attack in ``names`` on ``inputs`` (under each threshold selection that applies)
    and measure it against ``member``. KL divergence is taken on the loss the attack reads
    (the PGD points' loss for attacks on them). ``perturbation`` describes how the PGD points
    were made, ``probes(name)`` how each probe an attack reads was computed (privacy.probes), and
    ``n_references`` how many reference models there were; all are recorded. ``delta`` is the delta
    of each attack's descriptive one-run epsilon figure, and ``permutations`` the size of the permutation null
    of each inference accuracy (metrics.chance)."""
    results = []
    for name in names:
        spec = attack_spec(name)
        losses = inputs.target.get("adv_loss" if spec.adversarial else "loss")
        for chosen in selections(name, selection):
            out = _checked_scores(name, inputs, chosen, per_class, member)
            calibration = None
            if out.oracle_groups is not None and out.threshold is None:  # oracle per-class thresholds: the metrics' to pick
                groups = np.asarray(out.oracle_groups)
                calibration = (out.scores, groups)
                out.scores, out.threshold = oracle_per_group(out.scores, member, groups), 0.0
            metrics = evaluate_scores(out.scores, member, attack=name, threshold=out.threshold, losses=losses,
                                      n_bootstrap=bootstrap, seed=seed, selection=out.threshold_selection, delta=delta,
                                      n_permutations=permutations, calibration=calibration)
            details: dict[str, Any] = {
                "per_class": per_class and spec.threshold,
                "n_references": n_references if needs_references(name, chosen) else 0,
                "inputs": "pgd" if spec.adversarial else "clean",
            }
            if spec.adversarial and perturbation is not None:
                details["perturbation"] = perturbation
            if spec.probes and probes is not None:
                details["probes"] = {p: probes(p) for p in spec.probes}
            details["family"] = spec.family
            details.update(out.details)
            results.append(AttackResult(np.asarray(out.scores, dtype=np.float64), member, metrics, details))
    return results
