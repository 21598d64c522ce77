"""The one resolved target: what a study, an audit and an evaluation read of a model, whatever its kind.

A kind of target is a subclass of :class:`Target` in a module of its own:

- :class:`RunTarget` (here): a run robustmia trained, its folder;
- ``experiments.external.ExternalModel``: a model trained elsewhere: architecture and weights (or an
  nn.Module), the data it saw and who its members were;
- ``experiments.robustbench.RobustBenchModel``: one of RobustBench's zoo by name, its threat model, default
  attacks and leaderboard entry;
- ``experiments.exported.ExportedModel``: a model exported with ``torch.export`` (a ``.pt2`` file: network and
  weights in one, no code to run), e.g. a deployed model whose training code you do not have.

Each kind says what it is built from (``folder``, its stated training), and provides its examples
(members, non-members and examples it never saw), its model, the recipe its reference models share
by default, its provenance and its evaluation. :func:`audit_target` draws one audit's evaluation set,
population and reference fill from them in one way for every kind, and the runner evaluates and audits a
list of targets with one task each. Nothing outside a kind's module asks which kind a target is.

A new kind is one module (a subclass of Target, or of ExternalModel where it is a model trained elsewhere that
is built another way) and, for the latter, one entry in :data:`ARCH_KINDS`, the ``arch`` that names it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from robustmia.errors import UserError, warn

if TYPE_CHECKING:
    from robustmia.data.catalog import DatasetInfo
    from robustmia.data.datasets import ImageSet
    from robustmia.training.config import TrainConfig


# models trained elsewhere whose ``arch`` (``KIND`` or ``KIND:NAME``) names a kind of their own: the class of each
ARCH_KINDS = {"exported": "robustmia.experiments.exported:ExportedModel",
              "robustbench": "robustmia.experiments.robustbench:RobustBenchModel"}


@dataclass
class Examples:
    """A target's examples: who trained it (``members``), who did not (``nonmembers``), further examples it never saw
    (``spare``: population and reference fill), what they are (``info``) and where each came from (``sources``)."""

    members: "ImageSet"
    nonmembers: "ImageSet"
    spare: Optional["ImageSet"]
    info: "DatasetInfo"
    sources: Optional[dict[str, str]] = None


class Target:
    """A model to evaluate and audit (see the module docstring). A kind sets these and overrides what differs."""

    folder: Path  # where its evaluations, PGD points and audits are cached
    eps: float = 0.0  # its (stated) training eps: the default of PGD evaluation and of attacks on PGD points
    balanced: bool = False  # an audit scores as many non-members as members (else up to eval_size of each)
    reference_recipe: Optional[str] = None  # a recipe its reference models train with instead of its own ...
    reference_train: dict[str, Any] = {}  # ... and settings over that recipe
    eval_batch_size: int = 500
    dp_delta: Optional[float] = None  # a DP-trained target's accountant delta: its empirical epsilon is measured there
    shortfall: str = "pass a smaller --eval-size (spare non-members become population)"  # how to get more population examples

    # --- what a kind provides ---------------------------------------------------------------------------------

    def examples(self) -> Examples:
        raise NotImplementedError

    def load_model(self, device: Any) -> Any:
        """The model in eval mode on ``device`` (a torch.device)."""
        raise NotImplementedError

    def stated(self) -> tuple[Optional[str], Optional[str]]:
        """Its architecture and training method as known (None: not known), compared with a reference recipe's."""
        raise NotImplementedError

    def provenance(self, population: Optional[int] = None) -> dict[str, Any]:
        """Where it came from, into the audit's results (e.g. ``{"run": ...}`` or ``{"external": ...}``); ``population``:
        how many examples an audit drew as its population, for a kind that says where they came from."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What an evaluation is of: the header of ``robustmia evaluate``'s answer."""
        raise NotImplementedError

    def config_row(self) -> dict[str, Any]:
        """Its columns of the paper's tables (results.json ``config``): dataset, model, method, eps."""
        raise NotImplementedError

    def own_recipe(self) -> Optional["TrainConfig"]:
        """The training config its reference models share unless ``reference_recipe`` names another (None: none)."""
        return None

    def dataset(self) -> tuple[Optional[str], Optional[str]]:
        """The dataset its examples come from and its folder (reference models train on it)."""
        return None, None

    def training(self) -> Optional["TrainConfig"]:
        """The config to train it with before anything reads it (a study's own targets), else None."""
        return None

    def check(self, device: Any) -> None:
        """Everything it is built from, checked before anything is written (one line otherwise)."""

    def check_idle(self) -> None:
        """Refuse a target that another process is changing now (a run being trained)."""

    def model_key(self) -> str:
        """A short name of its weights, in its cached signals' names (a model trained further is read again)."""
        return ""

    def warnings(self) -> list[str]:
        return []

    def population_pool(self, examples: Examples, leftover: "ImageSet") -> "ImageSet":
        """The examples it never saw, beyond the evaluation set: the non-members left over, then the spare ones."""
        from robustmia.data.datasets import ImageSet

        return ImageSet.concat(leftover, *([examples.spare] if examples.spare is not None else []))

    def supplied_references(self, columns: Any, device: Any) -> tuple[Optional[list], Any, Optional[dict[str, Any]]]:
        """Reference models the user trained: their loaders, their keep masks on the evaluation set (``columns``: its
        examples' positions among all members, then all non-members) and what to record of them; else Nones."""
        return None, None, None

    def default_attacks(self) -> Optional[list[str]]:
        """The attacks an audit of it runs when none are named, or None for the audit's defaults: without reference
        models to be had, those that need none."""
        if not self.can_train_references():
            from robustmia.privacy.attacks import ATTACKS, default_attacks

            return [a for a in default_attacks() if not ATTACKS[a].references]
        return None

    def setting_defaults(self) -> dict[str, Any]:
        """Audit settings its kind fixes unless told (e.g. as many reference models as were supplied)."""
        return {}

    def certifiable(self) -> bool:
        """Whether attacks on certified bounds may run on it (else they are left out of a study's audit of it)."""
        return True

    def evaluation_identity(self) -> list[Any]:
        """What names its evaluation's cache beyond the evaluation's settings."""
        return []

    def training_facts(self, log: list[dict[str, Any]]) -> dict[str, Any]:
        """What its training tells the report (a DP run's accountant from its ``log``'s last record, an early-stopped
        run's epoch)."""
        return {}

    # --- shared by every kind ---------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """What goes to a study's worker with a task: what the target is built from, never the examples, model or run it
        has read (a worker reads them again; a dataset pickled with every task would cost more than the task)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_examples", "run", "recipe")}
        if "_loaded" in state:
            state["_loaded"] = {}
        return state

    @functools.cached_property
    def recipe(self) -> Optional["TrainConfig"]:
        """The config its reference models train with: the named reference recipe, else its own (None: none can be)."""
        if self.reference_recipe is None:
            return self.own_recipe()
        from robustmia.experiments.references import reference_config

        return reference_config(self.reference_recipe, self.reference_train, *self.dataset())

    def drop_reference_recipe(self) -> None:
        """Forget the reference recipe (no attack needs reference models)."""
        self.reference_recipe, self.reference_train = None, {}
        self.__dict__.pop("recipe", None)

    def can_train_references(self) -> bool:
        return self.reference_recipe is not None or self.own_recipe() is not None

    def evaluate(self, perturbation: Any, *, bound: Optional[str], device: Any, batch_size: int = 500,
                 max_examples: Optional[int] = None) -> dict[str, Any]:
        """Clean, PGD (AutoAttack, verified) accuracy on its members (the ``train`` columns) and non-members (``test``)."""
        from robustmia.robust.evaluate import evaluate_model

        self.check(device)
        data = self.examples()
        return evaluate_model(self.load_model(device), data.members, data.nonmembers, perturbation,
                              num_classes=data.info.num_classes, batch_size=batch_size, bound=bound, cache=self.folder,
                              max_examples=max_examples)


def audit_target(target: Target, settings: Any, device: Any):
    """What an audit of ``target`` reads (experiments.audit.AuditTarget), drawn the same way for every kind:
    up to ``eval_size`` members and non-members (as many of each where the target is ``balanced``), a
    population from the non-members left over and the examples it never saw, and a fill for each reference model
    (unscored examples it trains on beside its half of the evaluation set, up to the target's member count).
    Everything is checked (files, model, weights, indices) before anything is written."""
    import numpy as np

    from robustmia.data.datasets import ImageSet
    from robustmia.experiments.audit import AuditTarget, population_size, reference_sizes
    from robustmia.experiments.references import config_key
    from robustmia.seeding import derive_seed

    target.check(device)
    data = target.examples()
    recipe = target.recipe
    m, n = len(data.members), len(data.nonmembers)
    limit = settings.eval_size
    n_mem, n_non = min(m, limit or m), min(n, limit or n)
    if target.balanced:
        n_mem = n_non = min(n_mem, n_non)
    if limit is not None and limit > min(m, n):
        warn(f"--eval-size {limit} is more than the target has ({m} members, {n} non-members): the audit scores "
             f"{n_mem} members and {n_non} non-members")
    rng = np.random.default_rng(derive_seed(settings.seed, 1))
    mem_idx = np.sort(rng.permutation(m)[:n_mem])
    non_perm = rng.permutation(n)
    non_idx = np.sort(non_perm[:n_non])
    pool = target.population_pool(data, data.nonmembers.subset(non_perm[n_non:]))
    order = rng.permutation(len(pool))
    drawn = population_size(settings)
    take = np.sort(order[:drawn])
    # each reference model: half the evaluated examples, filled with unscored pool examples to the target's member count
    fill = pool.subset(np.sort(order[drawn: drawn + max(0, m - (n_mem + n_non) // 2)])) if recipe is not None else None
    supplied, supplied_keep, supplied_about = target.supplied_references(np.r_[mem_idx, m + non_idx], device)
    about = target.provenance(population=len(take))
    if recipe is not None:
        about.update(reference_sizes(settings, (n_mem + n_non) // 2, len(fill), m))
    _about_references(target, about, supplied_about)
    name = f"n{n_mem}" if target.balanced else f"n{n_mem}+{n_non}"
    return AuditTarget(
        folder=target.folder / "audit" / f"{name}-seed{settings.seed}", points=target.folder, load_model=target.load_model,
        candidates=ImageSet.concat(data.members.subset(mem_idx), data.nonmembers.subset(non_idx)),
        member=np.r_[np.ones(n_mem, bool), np.zeros(n_non, bool)], population=pool.subset(take) if len(take) else None,
        eps=target.eps, recipe=recipe, reference_key=config_key(recipe) if target.reference_recipe is not None else "",
        reference_fill=fill if fill is not None and len(fill) else None, eval_batch_size=target.eval_batch_size,
        about=about, model_key=target.model_key(), dp_delta=target.dp_delta, shortfall=target.shortfall,
        supplied=supplied, supplied_keep=supplied_keep,
    )


def _about_references(target: Target, about: dict[str, Any], supplied: Optional[dict[str, Any]]) -> None:
    """The target's own warnings, and where its reference models come from (supplied ones, or a recipe other than its
    own, with the warning that says how that recipe differs from its stated training), into ``about``."""
    from robustmia.experiments.references import reference_warning

    own = target.warnings()
    if own:
        about["warnings"] = [*about.get("warnings", []), *own]
    if supplied is not None:
        about["references"] = supplied
    if target.reference_recipe is not None:
        about["references"] = {"recipe": target.reference_recipe, "config": target.recipe.model_dump(mode="json")}
        warning = reference_warning(target.reference_recipe, target.recipe, *target.stated(), target.eps)
        if warning is not None:
            about["warnings"] = [*about.get("warnings", []), warning]


class RunTarget(Target):
    """A run robustmia trained: its folder (``config``: the config it is trained with, where a study trains it first).
    Its examples are its split: its members, as many test-split non-members, and the pools of both splits
    (less a one-run DP audit's canaries) as examples it never saw; its reference models share its recipe."""

    balanced = True

    def __init__(self, folder: str | Path, config: Optional["TrainConfig"] = None, reference_recipe: Optional[str] = None,
                 reference_train: Optional[dict[str, Any]] = None):
        self.folder, self._config = Path(folder), config
        self.reference_recipe, self.reference_train = reference_recipe, dict(reference_train or {})

    @functools.cached_property
    def run(self) -> Any:
        from robustmia.training.run import Run

        return Run.open(self.folder)

    @property
    def config(self) -> "TrainConfig":
        return self._config if self._config is not None else self.run.config

    @property
    def eps(self) -> float:  # type: ignore[override]
        return self.config.eps

    @property
    def eval_batch_size(self) -> int:  # type: ignore[override]
        return self.config.eval_batch_size

    @property
    def dp_delta(self) -> Optional[float]:  # type: ignore[override]
        from robustmia.training.methods import DP

        return self.config.dp_delta if self.config.method in DP else None

    @property
    def shortfall(self) -> str:  # type: ignore[override]
        return (f"pass --eval-size below {min(len(self.run.split.members), len(self.run.split.nonmembers))} (spare non-members "
                "become population), or train the target with a smaller --train-size")

    def training(self) -> Optional["TrainConfig"]:
        return self._config

    def own_recipe(self) -> "TrainConfig":
        return self.config

    def dataset(self) -> tuple[Optional[str], Optional[str]]:
        return self.config.dataset, self.config.data_dir

    def stated(self) -> tuple[Optional[str], Optional[str]]:
        return self.config.model, self.config.method

    def certifiable(self) -> bool:
        from robustmia.models.names import CERTIFIABLE

        return self.config.model in CERTIFIABLE

    def check_idle(self) -> None:
        self.run.check_idle()

    def examples(self) -> Examples:
        return self._examples

    @functools.cached_property
    def _examples(self) -> Examples:
        import numpy as np

        from robustmia.data.canaries import draw as draw_canaries
        from robustmia.data.datasets import ImageSet, load_dataset

        run, config = self.run, self.run.config
        train_set, test_set = load_dataset(config.dataset, config.data_dir)
        split, pool_train = run.split, run.split.pool_train
        if config.canaries is not None:  # a one-run DP audit's candidates are no one's population and no reference's fill
            candidates, _ = draw_canaries(config.canaries, train_set, split.pool_train, run.info.num_classes, config.seed)
            pool_train = np.setdiff1d(pool_train, candidates.ids.numpy())
        spare = ImageSet.concat(train_set.subset(pool_train), test_set.subset(split.pool_test))
        return Examples(train_set.subset(split.members), test_set.subset(split.nonmembers), spare, run.info)

    def population_pool(self, examples: Examples, leftover: "ImageSet") -> "ImageSet":
        from robustmia.data.datasets import ImageSet

        return ImageSet.concat(examples.spare, leftover)  # the pools of both splits first (the order its audits were drawn in)

    def load_model(self, device: Any) -> Any:
        return self.run.load_model(device)

    def model_key(self) -> str:
        from robustmia.experiments.audit import checkpoint_key

        return checkpoint_key(self.folder)

    def provenance(self, population: Optional[int] = None) -> dict[str, Any]:
        return {"run": str(self.folder), **({"checkpoint": self.run.trained} if self.run.trained else {})}

    def warnings(self) -> list[str]:
        return [self.run.progress_warning()] if self.run.progress_warning() else []

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"run": str(self.folder), "dataset": c.dataset, "model": c.model, "method": c.method}

    def config_row(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def evaluate(self, perturbation: Any, *, bound: Optional[str], device: Any, batch_size: int = 500,
                 max_examples: Optional[int] = None) -> dict[str, Any]:
        """On its members and the whole test split."""
        from robustmia.robust.evaluate import evaluate_model

        members, test = self.run.data()
        return evaluate_model(self.load_model(device), members, test, perturbation, num_classes=self.run.info.num_classes,
                              batch_size=batch_size, max_examples=max_examples, bound=bound, cache=self.folder)

    def training_facts(self, log: list[dict[str, Any]]) -> dict[str, Any]:
        from robustmia.training.early_stop import read_state
        from robustmia.training.methods import DP

        facts: dict[str, Any] = {}
        config = self.config
        if config.method in DP:
            last = log[-1]
            facts["dp"] = {"epsilon": last["dp_epsilon"], "delta": last["dp_delta"], "noise": config.dp_noise, "clip": config.dp_clip,
                           "steps": last["step"], "accountant": "opacus RDP", "sampling": "Poisson"}
        if config.early_stop:
            facts["early_stop"] = read_state(self.folder)
        return facts


def resolve_target(target: Any = None, dataset: Optional[str] = None, members: Any = None, *, out: Any = None,
                   external: Optional[dict[str, Any]] = None) -> Target:
    """The target a call names, built once at the boundary (the API, and through it the CLI): a run folder; a
    model trained elsewhere (an nn.Module, or its files: ``external`` holds arch, weights, ... with ``dataset`` and
    ``members``; a kind of its own where its ``arch`` names one: :data:`ARCH_KINDS`). ``external``'s reference options
    apply to every kind."""
    external = dict(external or {})
    reference = {k: external.pop(k) for k in ("reference_recipe", "reference_train") if external.get(k) is not None}
    named = dataset is not None or members is not None or any(external.get(k) is not None for k in ("arch", "weights", "members_dir"))
    if isinstance(target, (str, Path)) and named:
        raise UserError(f"give a run folder ({target}) or a model trained elsewhere (--arch, --weights, --dataset, --members), not both")
    if target is None and not named:
        raise UserError("name a run folder, or a model trained elsewhere with --arch, --weights, --dataset and --members")
    if isinstance(target, (str, Path)):
        stray = sorted(k for k, v in external.items() if v not in (None, False, [], {}))
        if stray:
            raise UserError(f"--{stray[0].replace('_', '-')} describes a model trained elsewhere; {target} is a run folder, which "
                            "knows its own model and data")
        run = RunTarget(target, reference_recipe=reference.get("reference_recipe"), reference_train=reference.get("reference_train"))
        run.run  # noqa: B018  (a bad folder is refused before anything heavy is imported)
        return run
    from robustmia.experiments.external import ExternalModel

    return ExternalModel.build(dataset, members, model=target, out=out, **external, **reference)
