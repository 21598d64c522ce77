"""The black-box membership audit of one trained run.

1. The evaluation set: ``eval_size`` members and as many non-members (balanced, seeded).
2. The target's signals on it (clean, and on PGD points when an adversarial attack asks), and
   the probes that label-only and white-box attacks read (privacy.probes).
3. If an attack needs them, K reference models trained with the target's exact recipe
   through the one training loop, each on a random half of the evaluation set (balanced
   keep masks: every example is in exactly K/2 of them), and their signals on the
   evaluation set and on a population of examples that no model trained on (RMIA's z).
   A robust target gets robust reference models, since they share its recipe. They train
   in groups of ``stack_references``, each group stacked into one batched computation
   where that pays off (``training.stacked``); a group is also one task of a Ray cluster.
4. Each attack turns the signals into scores; the metrics are computed the same way for all.

Everything is cached under ``RUN_DIR/audit/``: a re-run trains and computes nothing twice.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np
import torch

from robustmia.data.catalog import dataset_info
from robustmia.data.datasets import ImageSet
from robustmia.errors import UserError, warn
from robustmia.io import atomic_write
from robustmia.locks import folder_lock
from robustmia.experiments.settings import AuditSettings
from robustmia.privacy.attacks import ATTACKS, AttackInputs, needs_adversarial, needs_references
from robustmia.privacy.attacks.registry import they_need
from robustmia.privacy.probes import NEEDS_EPS, ProbeSettings, check_probe, probe_signals
from robustmia.privacy.results import FIGURE_SIGNALS, AuditResult, run_attacks
from robustmia.privacy.signals import model_signals
from robustmia.progress import Progress, emit
from robustmia.robust.evaluate import Perturbation
from robustmia.training.checkpoint import MODEL_FILE, checkpoint_dir, read_meta, recover_group
from robustmia.training.config import TrainConfig
from robustmia.training.loop import train
from robustmia.models.inference import resolve_device
from robustmia.seeding import derive_seed
from robustmia.training.run import load_trained_model, run_finished
from robustmia.training.stacked import stacking_pays, train_stacked

if TYPE_CHECKING:
    from robustmia.experiments.targets import Target

def balanced_keep(k: int, n: int, seed: int) -> np.ndarray:
    """(k, n) bool: every column has exactly k/2 True, drawn at random."""
    order = np.random.default_rng(seed).random((k, n)).argsort(0)
    return order < k // 2


def _save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def _load_arrays(path: Path) -> Optional[dict[str, np.ndarray]]:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:
        return None  # a damaged cache entry is recomputed


def _cached(path: Path, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays saved at ``path``, computed and saved first if they are not there (or damaged)."""
    cached = _load_arrays(path)
    if cached is None:
        cached = compute()
        _save_arrays(path, cached)
    return cached


def reference_groups(settings: AuditSettings) -> list[list[int]]:
    """The reference models the attacks need, in the groups they train in (each group one
    task of a study): none if no attack needs them."""
    if not any(needs_references(a, settings.threshold) for a in settings.attacks):
        return []
    k, size = settings.references, settings.stack_references
    return [list(range(i, min(i + size, k))) for i in range(0, k, size)]


@dataclass
class AuditTarget:
    """What an audit reads of its target, whatever its kind (experiments.targets.audit_target draws it; a one-run DP
    audit's canaries: experiments.dp_audit.canary_target).

    ``candidates``/``member``: the evaluation set and its truth; ``population``: examples no
    model trained on (RMIA's z); ``folder``: where the audit caches its signals, reference
    models and results; ``points``: where the target's PGD points are cached (shared with its
    evaluation); ``eps``: its training eps (the default of attacks on PGD points); ``recipe``:
    the training config reference models get (None: no reference model can be trained);
    ``shortfall``: how to get more population examples; ``about``: provenance, into the results;
    ``supplied``/``supplied_keep``: reference models the user trained (loaders) and which evaluation
    examples each trained on, (K, N) bool, used instead of training any."""

    folder: Path
    points: Path
    load_model: Callable[[torch.device], torch.nn.Module]
    candidates: ImageSet
    member: np.ndarray
    population: Optional[ImageSet]
    eps: float
    recipe: Optional[TrainConfig]
    eval_batch_size: int = 500
    shortfall: str = ""
    about: dict[str, Any] = field(default_factory=dict)
    supplied: Optional[list[Callable[[torch.device], torch.nn.Module]]] = None
    supplied_keep: Optional[np.ndarray] = None
    model_key: str = ""  # names the target's weights in its cached signals (a run trained further is read again)
    reference_key: str = ""  # names the reference recipe where it can vary (an external target's): new settings, new models
    dp_delta: Optional[float] = None  # a DP-trained target's accountant delta
    reference_fill: Optional[ImageSet] = None  # unscored examples every reference model trains on too, to the target's size


def population_size(settings: AuditSettings) -> int:
    """How many population examples (RMIA's z, QMIA's training data) the audit draws: none when no attack reads them."""
    return settings.population if any(ATTACKS[a].population for a in settings.attacks) else 0


def reference_sizes(settings: AuditSettings, half: int, fill: int, target_size: int) -> dict[str, Any]:
    """How many examples each reference model trains on against the target's count (a warning when fewer):
    ``half`` of the evaluated examples (each is in exactly half of the models), plus ``fill`` examples
    that no attack scores."""
    if not reference_groups(settings):
        return {}
    size = half + fill
    about: dict[str, Any] = {"reference_train_size": {"references": size, "target": target_size}}
    if size < target_size:
        about["warnings"] = [f"reference models train on about {size} examples (half the {2 * half} evaluated, plus {fill} "
                             f"unscored), the target on {target_size}: too few spare examples to fill them, so LiRA and RMIA "
                             "may understate leakage"]
    return about


def checkpoint_key(run_dir: Path) -> str:
    """A short name of the weights in a run's latest checkpoint (from its meta.json, without loading them)."""
    ckpt = checkpoint_dir(run_dir)
    return "" if ckpt is None else str(read_meta(ckpt)["sha256"][MODEL_FILE])[:12]


class Audit:
    def __init__(self, target: "Target | AuditTarget", settings: AuditSettings, *, device: str | torch.device = "auto",
                 progress: Optional[Progress] = None):
        from robustmia.experiments.targets import Target, audit_target

        self.device = resolve_device(device)
        self.target = audit_target(target, settings, self.device) if isinstance(target, Target) else target
        self.settings, self.progress = settings, progress
        self.perturbation = None
        if any(needs_adversarial(a) for a in settings.attacks):
            self.perturbation = Perturbation.for_run(self.target.eps, settings.eps, steps=settings.attack_steps,
                                                     step_size=settings.step_size, seed=settings.seed)
            if self.perturbation.eps is None:
                raise UserError("adversarial-input attacks need an epsilon: pass --eps (e.g. 8/255); the target was trained with none")
        if reference_groups(settings) and self.target.recipe is None and self.target.supplied is None:
            needing = [a for a in settings.attacks if needs_references(a, settings.threshold)]
            raise UserError(f"{', '.join(needing)} need reference models: name the recipe to train them with (--reference-recipe), "
                            "supply your own (--reference-weights, --reference-keep), or leave these attacks out")
        if self.target.supplied is None:
            settings.check_drawn_references()
        if self.target.supplied is not None and len(self.target.supplied) != settings.references:
            raise UserError(f"{len(self.target.supplied)} reference models were supplied, but the audit asks for {settings.references}; "
                            f"pass --references {len(self.target.supplied)}")
        if self.target.supplied_keep is not None:
            self._check_keep(self.target.supplied_keep)
        # a DP target's empirical epsilon is measured at its accountant's delta (unless told), so that the two compare
        self.delta = self.target.dp_delta if self.target.dp_delta is not None and "delta" not in settings.model_fields_set else settings.delta
        eps = settings.eps if settings.eps is not None else (self.target.eps or None)
        self.probes = ProbeSettings(eps=eps, bisections=settings.boundary_bisections, steps=settings.probe_steps, draws=settings.noise_draws,
                                    restarts=settings.adv_restarts, bound=settings.bound, seed=settings.seed)
        no_eps = [a for a in settings.attacks if set(ATTACKS[a].probes) & set(NEEDS_EPS)]
        if no_eps and not eps:
            raise UserError(f"{they_need(no_eps)} an epsilon: pass --eps (e.g. 8/255); the target was trained with none")
        self.candidates, self.member, self.population = self.target.candidates, self.target.member, self.target.population
        self.folder = self.target.folder
        have = 0 if self.population is None else len(self.population)
        need = max((ATTACKS[a].population for a in settings.attacks), default=0)
        if have < need:
            needing = [a for a in settings.attacks if ATTACKS[a].population]
            raise UserError(f"{they_need(needing)} at least {need} population examples "
                            f"that no model trains on, but this target leaves {have}: {self.target.shortfall}")

    def _check_keep(self, keep: np.ndarray) -> None:
        """Every evaluated example has as many IN and OUT reference models as each attack needs (LiRA fits Gaussians to them)."""
        n_in, n_out = keep.sum(0), (~keep).sum(0)
        for a in self.settings.attacks:
            need_in, need_out = ATTACKS[a].per_example
            short = np.flatnonzero((n_in < need_in) | (n_out < need_out))
            if len(short):
                raise UserError(f"{a} needs at least {need_in} IN and {need_out} OUT reference models for every example, but the keep "
                                f"masks give example {int(short[0])} of the evaluation set {int(n_in[short[0]])} IN and "
                                f"{int(n_out[short[0]])} OUT ({len(short)} examples fall short); supply more reference models "
                                "or leave the attack out")

    # --- signals -------------------------------------------------------------------------

    def _signal_key(self, adversarial: bool = True) -> str:
        a = self.perturbation
        return "clean" if a is None or not adversarial else f"pgd-eps{a.eps:.6g}-steps{a.steps}-alpha{a.alpha:.6g}-seed{a.seed}"

    def _adversarial(self, references: bool = False, population: bool = False) -> bool:
        """Whether an attack reads signals on PGD points of these examples: the target's evaluation set for any
        adversarial attack; reference models' only for one that needs them (a shadow threshold on adv-*); the
        population's only for one that needs population examples. PGD points nobody reads are never made."""
        return self.perturbation is not None and any(
            ATTACKS[a].adversarial and (not references or needs_references(a, self.settings.threshold))
            and (not population or ATTACKS[a].population) for a in self.settings.attacks)

    def _probes(self, references: bool = False, population: bool = False) -> list[str]:
        """The probes the attacks read: of reference models only where they need references, on the
        population only where they need population examples."""
        wanted = [a for a in self.settings.attacks if (not references or needs_references(a, self.settings.threshold))
                  and (not population or ATTACKS[a].population)]
        return list(dict.fromkeys(p for a in wanted for p in ATTACKS[a].probes))

    def _signals(self, folder: Path, model: Callable[[], torch.nn.Module], data: ImageSet, name: str,
                 points: Path, probes: list[str], adversarial: bool) -> dict[str, np.ndarray]:
        """The signals of ``model()`` on ``data`` (on its PGD points too if ``adversarial``) and its ``probes``,
        cached in ``folder`` (the model is loaded only to compute them); its PGD points are shared through
        ``points`` (its run folder)."""
        owner = f"-{self.target.model_key}" if points == self.target.points and self.target.model_key else ""
        perturbation = self.perturbation if adversarial else None
        out = _cached(folder / f"signals-{name}-{self._signal_key(adversarial)}{owner}.npz",
                      lambda: model_signals(model(), data, perturbation=perturbation, batch_size=self.target.eval_batch_size,
                                            cache=points))
        for probe in probes:
            key = self.probes.key(probe)
            out.update(_cached(folder / f"probe-{probe}{'-' + key if key else ''}-{name}{owner}.npz",
                               lambda: probe_signals(probe, None if probe == "pixels" else model(), data, self.probes,
                                                     self.target.eval_batch_size)))
        return out

    # --- reference models ----------------------------------------------------------------

    @functools.cached_property
    def keep(self) -> np.ndarray:
        """(K, N): which evaluation examples each reference model trains on."""
        if self.target.supplied_keep is not None:
            return self.target.supplied_keep
        k = self.settings.references
        return balanced_keep(k, len(self.candidates), derive_seed(self.settings.seed, 2, k))

    @property
    def references_folder(self) -> Path:
        """Where this audit's reference models live (audits of one run that differ in their attacks share them)."""
        key = f"-{self.target.reference_key}" if self.target.reference_key else ""
        return self.folder / f"references-{self.settings.references}{key}"

    def _reference(self, j: int) -> tuple[TrainConfig, Path]:
        folder = self.references_folder / f"model-{j:03d}"
        # a reference model's own test accuracy is read by nobody: it logs none (and loads no dataset)
        update = {"seed": derive_seed(self.settings.seed, 3, j) % (2**31), "eval_every": 0}
        return self.target.recipe.model_copy(update=update), folder

    def train_references(self, group: list[int]) -> None:
        """Train (or finish) the reference models of one group: stacked where that pays off.
        Finished ones are left alone without opening them (a study's tasks may have trained them);
        supplied ones need no training."""
        if self.target.supplied is not None:
            emit(self.progress, "advance", steps=len(group))
            return
        stacked = len(group) > 1 and stacking_pays(self.target.recipe, self.device)
        if stacked:  # a kill inside the group's checkpoint is finished or undone for all its models first
            recover_group([self._reference(j)[1] for j in group])
        pending = [j for j in group if not run_finished(self._reference(j)[1])]
        emit(self.progress, "advance", steps=len(group) - len(pending))
        fill = [self.target.reference_fill] if self.target.reference_fill is not None else []
        jobs = [(*self._reference(j), ImageSet.concat(self.candidates.subset(np.flatnonzero(self.keep[j])), *fill)) for j in pending]
        if stacked and jobs:  # resumed as it was trained: the group, stacked
            configs, folders, members = zip(*jobs)
            train_stacked(configs, folders, members, device=str(self.device))
            emit(self.progress, "advance", steps=len(jobs))
        else:
            for config, folder, members in jobs:
                train(config, folder, resume=True, device=str(self.device), members=members)
                emit(self.progress, "advance", steps=1)

    def _reference_signals(self, j: int) -> tuple[dict[str, np.ndarray], Optional[dict[str, np.ndarray]]]:
        if self.target.supplied is not None:
            folder = self.folder / f"supplied-{self.settings.references}" / f"model-{j:03d}"
            model = functools.cache(lambda: self.target.supplied[j](self.device))
        else:
            config, folder = self._reference(j)
            model = functools.cache(lambda: load_trained_model(folder, config, dataset_info(config.dataset, config.data_dir), self.device))
        pop = (self._signals(folder, model, self.population, "population", folder, self._probes(True, True),
                             self._adversarial(references=True, population=True))
               if self.population is not None else None)
        return self._signals(folder, model, self.candidates, "eval", folder, self._probes(True), self._adversarial(references=True)), pop

    def task_groups(self) -> list[list[int]]:
        """The reference models in the groups a study runs as tasks: a group that would not be stacked
        (training.stacked.stacking_pays) is one task per model, so that parallel workers share the load."""
        groups = reference_groups(self.settings)
        if self.target.supplied is not None or self.target.recipe is None or stacking_pays(self.target.recipe, self.device):
            return groups
        return [[j] for group in groups for j in group]

    def prepare_references(self, group: list[int]) -> None:
        """Train one group of reference models and cache their signals (one task of a study)."""
        self.train_references(group)
        for j in group:
            self._reference_signals(j)

    def _reference_models(self) -> tuple[np.ndarray, list[dict], Optional[list[dict]]]:
        what = "supplied" if self.target.supplied is not None else self.target.recipe.method
        emit(self.progress, "start", task=f"reference models ({what})", total=self.settings.references)
        for group in reference_groups(self.settings):
            self.train_references(group)
        emit(self.progress, "end")
        refs, ref_pop = zip(*(self._reference_signals(j) for j in range(self.settings.references)))
        if self.target.supplied is not None:
            self._check_alignment(list(refs))
        return self.keep, list(refs), (list(ref_pop) if self.population is not None else None)

    def _check_alignment(self, refs: list[dict[str, np.ndarray]]) -> None:
        """Supplied keep masks whose columns do not follow the evaluation set's layout (members by ascending index, then
        non-members, as the file's doc says) make LiRA and RMIA silently wrong. Models fit their training data, so on
        the examples marked IN their loss is lower: for each part of the layout (the target's members, its non-members)
        the median over the supplied models of Welch's t of that gap tells. Where one part shows it (t >= 2) and the
        other does not (t < 1), that part's columns look out of order, and the audit warns (it cannot prove it)."""
        def t(loss: np.ndarray, k: np.ndarray) -> float:
            a, b = loss[~k], loss[k]
            se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if len(a) > 1 and len(b) > 1 else 0.0
            return float((a.mean() - b.mean()) / se) if se > 0 else 0.0

        shown = {}
        for part, columns in (("members", self.member), ("non-members", ~self.member)):
            stats = [t(r["loss"][columns], k[columns]) for r, k in zip(refs, self.keep) if k[columns].any() and (~k[columns]).any()]
            if stats:
                shown[part] = float(np.median(stats))
        if len(shown) < 2 or max(shown.values()) < 2:
            return  # the models show no gap anywhere (they fit nothing): nothing to compare
        for part, value in shown.items():
            if value < 1:
                message = (f"the supplied reference models are no less wrong on the target's {part} their keep masks mark IN "
                           f"than on those marked OUT (median Welch t {value:.2g}; the other part {max(shown.values()):.2g}): "
                           "those columns may not follow the evaluation set's layout (members by ascending index, then "
                           "non-members by ascending index), and LiRA and RMIA would then be wrong")
                warn(message)
                self.target.about["warnings"] = [*self.target.about.get("warnings", []), message]

    # --- attacks -------------------------------------------------------------------------

    @functools.cached_property
    def model(self) -> torch.nn.Module:
        """The target model, once every probe its attacks need can run on it (else one line naming the attack)."""
        return self._checked(self.target.load_model(self.device))

    def inputs(self) -> AttackInputs:
        model = lambda: self.model  # noqa: E731  (loaded only where a signal is not cached)
        # the target's PGD points live beside it (a run's folder), shared with its evaluation
        target = self._signals(self.folder, model, self.candidates, "target", self.target.points, self._probes(), self._adversarial())
        population = (self._signals(self.folder, model, self.population, "target-population", self.target.points,
                                    self._probes(population=True), self._adversarial(population=True))
                      if self.population is not None else None)
        inputs = AttackInputs(target=target, labels=self.candidates.labels.numpy(), population=population)
        if reference_groups(self.settings):
            inputs.keep, inputs.references, inputs.ref_population = self._reference_models()
        return inputs

    def _checked(self, model: torch.nn.Module) -> torch.nn.Module:
        """The target model, once every probe its attacks need can run on it (else one line naming the attack)."""
        for a in self.settings.attacks:
            for probe in ATTACKS[a].probes:
                check_probe(probe, model, self.candidates, self.probes, attack=a)
        return model

    def run_attacks(self) -> AuditResult:
        """Every attack of the settings, saved (``attacks.json``, ``scores.npz``) in the audit folder,
        which one process writes at a time."""
        self.model  # noqa: B018  (a model that cannot be loaded, or an attack it cannot take, is refused before anything is written)
        with folder_lock(self.folder, "run the same command again (what is done is kept)"):
            return self._run_attacks()

    def _run_attacks(self) -> AuditResult:
        inputs, s = self.inputs(), self.settings
        attacks = run_attacks(inputs, s.attacks, self.member, selection=s.threshold, per_class=s.per_class,
                              bootstrap=s.bootstrap, seed=s.seed, n_references=s.references,
                              perturbation=self.perturbation.describe() if self.perturbation is not None else None,
                              probes=self.probes.describe, delta=self.delta, permutations=s.permutations)
        signals = {k: inputs.target[k] for k in FIGURE_SIGNALS}
        ids = None if self.candidates.ids is None else self.candidates.ids.numpy()
        result = AuditResult(attacks, self.member, signals, {**self.target.about, "settings": s.model_dump(mode="json")}, ids)
        result.add_exposure(self.candidates.images.numpy())
        result.save(self.folder, merge=True)  # the folder keeps earlier audits' other attacks; this call returns its own
        return result
