"""Auditing a model trained elsewhere: its architecture, weights and normalisation, the data
it saw, and who its members were.

:class:`ExternalTarget` is the description (validated without numerical libraries: the CLI's
flags, a study spec's ``external`` block and the Python API all build one);
:class:`ExternalModel` is it as a kind of target (experiments.targets): what an evaluation and an audit read,
checked in full before anything is written.

Membership ground truth, one of:

- ``members``: a file of indices into the dataset's *train* split (``.npz`` with an array
  ``members``; ``.json``, a list or ``{"members": [...]}``; ``.csv``/``.txt``, integers
  separated by commas or new lines, a non-numeric first line skipped). With ``nonmembers`` in
  the same file (npz/JSON; train-split indices disjoint from the members) those are the
  non-members; otherwise the non-members are the dataset's test split, which the model never saw.
  With ``index_order: original`` (``--index-order original``, or ``"order": "original"`` in a JSON
  file) the indices are into the dataset's original order instead: scikit-learn's ``load_digits()``
  for digits (robustmia draws its own split from it), the train split followed by the test split
  elsewhere (torchvision's ``train=True`` then ``train=False``; data.catalog.original_positions).
  Members may then come from either split, and without ``nonmembers`` every other example of the
  dataset is a non-member.
- ``members_dir`` and ``nonmembers_dir``: two image folders of class sub-folders (ImageFolder),
  resized to ``image_size``.

Non-members beyond ``eval_size`` become RMIA's population (examples no model trained on).
Reference models (LiRA, RMIA, shadow thresholds) train with ``reference_recipe`` (a robustmia
recipe) and ``reference_train`` (settings over it) on halves of the evaluation set; when that
recipe is not the one the target was trained with (``method``/``eps`` as stated, and its
architecture), the audit carries a warning: such references understate leakage. Or the user
supplies K reference models of the target's architecture (``reference_weights``) and an
``.npz`` whose ``keep`` (K, M + N) bool marks which of the M members and N non-members (in
that order: members by ascending index, then non-members) each one trained on.
"""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from robustmia.epsilon import Epsilon
from robustmia.errors import UserError
from robustmia.experiments.targets import Examples, Target
from robustmia.models.robustbench import LINF_EPS, robustbench_name
from robustmia.training.methods import METHODS


ALL_MEMBERS = "all"  # members: the whole train split (the setting of every RobustBench entry and of the paper)
MIN_STD, MAX_STD = 1e-3, 1e3  # the normalisation stds robustmia accepts: pixels are in [0, 1]


def parse_normalize(value: Any) -> Optional[tuple[list[float], list[float]]]:
    """``none``/None, ``MEAN/STD`` with comma-separated channels (``0.49,0.48,0.45/0.25,0.24,0.26``),
    a single ``0.5/0.25`` for every channel, or ``{"mean": [...], "std": [...]}``."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, dict) and set(value) == {"mean", "std"}:
        mean, std = value["mean"], value["std"]
    elif isinstance(value, str) and value.count("/") == 1:
        mean, std = (part.split(",") for part in value.split("/"))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        mean, std = value
    else:
        raise ValueError("write the normalisation as MEAN/STD, e.g. 0.4914,0.4822,0.4465/0.2470,0.2435,0.2616, or none")
    try:
        mean, std = [float(m) for m in mean], [float(s) for s in std]
    except (TypeError, ValueError):
        raise ValueError("the means and stds must be numbers") from None
    if len(mean) != len(std) or not mean:
        raise ValueError("give as many means as stds, one per channel")
    if not all(math.isfinite(v) for v in (*mean, *std)) or not all(abs(m) <= 1 for m in mean):
        raise ValueError("the means must be finite pixel values (in [-1, 1]) and the stds finite numbers")
    if any(s < MIN_STD or s > MAX_STD for s in std):
        raise ValueError(f"every std must lie in [{MIN_STD:g}, {MAX_STD:g}] (pixels are in [0, 1]; a std outside it amplifies or "
                         "flattens them absurdly)")
    return mean, std


class ExternalTarget(BaseModel):
    """A model trained elsewhere (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Optional[str] = None  # None only with a model object (the Python API)
    weights: Optional[str] = None
    arch_args: dict[str, Any] = Field(default_factory=dict)
    normalize: Optional[tuple[list[float], list[float]]] = None
    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    members: Optional[str | list[int]] = None  # a membership file, or (Python API) the indices themselves
    nonmembers: Optional[list[int]] = None  # (Python API) train-split indices of non-members
    index_order: Literal["split", "original"] = "split"  # what the indices index: the train split, or the dataset's original order
    members_dir: Optional[str] = None
    nonmembers_dir: Optional[str] = None
    image_size: int = Field(default=32, ge=1, le=512)  # data.sets.imagefolder.MAX_SIZE
    method: Optional[str] = None  # how the target was trained, as its owner states it
    eps: Epsilon = 0.0  # its training eps: the default eps of PGD evaluation and attacks
    reference_recipe: Optional[str] = None
    reference_train: dict[str, Any] = Field(default_factory=dict)
    reference_weights: list[str] = Field(default_factory=list)  # or reference models you trained (same arch) ...
    reference_keep: Optional[str] = None  # ... and an .npz whose keep (K, members + non-members) says what each trained on
    # RobustBench's models (arch robustbench:NAME; models.robustbench): the threat model it was trained for, the folder of
    # RobustBench's checkpoint layout (the weights unless given), whether to fetch a missing one, and what the leaderboard
    # says of it (architecture, extra data, reported clean and AutoAttack accuracy, paper), into the provenance and report
    threat_model: Literal["Linf", "L2", "corruptions"] = "Linf"
    model_dir: Optional[str] = None
    download: bool = False
    leaderboard: dict[str, Any] = Field(default_factory=dict)
    # whether an entry-point ``arch`` may run: set where the user named it as code (a flag, the Python API) or allowed its
    # module (robustmia.entry_points); never from the data a target is read from
    _code_named: bool = PrivateAttr(default=False)

    def naming_code(self) -> "ExternalTarget":
        """This target, its entry point (if any) named as code by the user: it may run."""
        self._code_named = True
        return self

    @model_validator(mode="before")
    @classmethod
    def _leaderboard_eps(cls, data: Any) -> Any:
        """A RobustBench L-infinity model is attacked at the leaderboard's 8/255 unless its training eps is stated."""
        if isinstance(data, dict) and robustbench_name(data.get("arch")) and not data.get("eps") and data.get("threat_model", "Linf") == "Linf":
            return {**data, "eps": LINF_EPS}
        return data

    @field_validator("normalize", mode="before")
    @classmethod
    def _normalize(cls, v: Any) -> Any:
        return parse_normalize(v)

    @field_validator("method")
    @classmethod
    def _method(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v not in METHODS:
            raise ValueError(f"unknown training method; choose one of: {', '.join(METHODS)}")
        return v

    @model_validator(mode="after")
    def _one_membership(self) -> "ExternalTarget":
        dirs = (self.members_dir is not None, self.nonmembers_dir is not None)
        if dirs[0] != dirs[1]:
            raise ValueError("give members_dir and nonmembers_dir together")
        if dirs[0] == (self.members is not None):
            raise ValueError("say who the members were: members (a file of indices, with dataset) or members_dir and nonmembers_dir")
        if self.members is not None and self.dataset is None:
            raise ValueError("members indexes a dataset's train split: name the dataset")
        if self.robustbench is not None:
            if self.normalize is not None:
                raise ValueError("RobustBench models embed their own normalisation: drop normalize")
            from robustmia.models.robustbench import DATASETS

            if self.dataset not in DATASETS:
                raise ValueError(f"RobustBench models are audited on {' or '.join(DATASETS)}: name the dataset (got {self.dataset!r})")
        elif (self.arch is None) != (self.weights is None):
            raise ValueError("give the architecture (arch) and its weights together")
        if bool(self.reference_weights) != (self.reference_keep is not None):
            raise ValueError("supplied reference models need their keep masks: give reference_weights and reference_keep together")
        if self.reference_weights and (self.reference_recipe is not None or self.arch is None):
            raise ValueError("supplied reference models share the target's arch: give arch, and no reference_recipe")
        return self

    @property
    def robustbench(self) -> Optional[str]:
        """The RobustBench name of ``arch: robustbench:NAME``, else None."""
        return robustbench_name(self.arch)

    def weights_file(self) -> Optional[Path]:
        """The weights: the given file, or for a RobustBench model its checkpoint in RobustBench's layout."""
        if self.weights is not None or self.robustbench is None:
            return Path(self.weights) if self.weights is not None else None
        from robustmia.models.robustbench import checkpoint

        return checkpoint(self.model_dir, self.robustbench, self.dataset, self.threat_model)

    def check_files(self) -> None:
        """Every named file and folder exists (a one-line error otherwise); the dataset's files too."""
        if self.robustbench is not None and self.weights is None and not self.weights_file().is_file():
            if self.download:
                from robustmia.models.robustbench import download

                download(self.robustbench, self.model_dir, self.dataset, self.threat_model)
            else:
                raise UserError(f"RobustBench model {self.robustbench}: no checkpoint at {self.weights_file()}; fetch it with RobustBench's own "
                                f"loader (robustmia evaluate --arch robustbench:{self.robustbench} --dataset {self.dataset} --members all "
                                "--download, or download: true), give --weights FILE, or point --model-dir ($ROBUSTMIA_MODEL_DIR) at "
                                "RobustBench's layout")
        members_file = self.members if isinstance(self.members, str) and self.members != ALL_MEMBERS else None
        supplied = [("reference weights", w, False) for w in self.reference_weights] + [("reference_keep", self.reference_keep, False)]
        for what, path, folder in (("weights", self.weights, False), ("members", members_file, False), *supplied,
                                   ("members_dir", self.members_dir, True), ("nonmembers_dir", self.nonmembers_dir, True)):
            if path is not None and not (Path(path).is_dir() if folder else Path(path).is_file()):
                raise UserError(f"{what} {path} does not exist")
        if self.dataset is not None and (self.members is not None or self.reference_recipe is not None):  # its files are read
            from robustmia.data.catalog import check_data_present

            check_data_present(self.dataset, self.data_dir)


def read_membership(path: str | Path | list[int], nonmembers: Optional[list[int]] = None,
                    n_train: Optional[int] = None) -> tuple[list[int], Optional[list[int]], Optional[str]]:
    """``(members, nonmembers or None, the order a JSON file names or None)`` from a membership file (see the module
    docstring), or from the indices themselves."""
    if isinstance(path, list):
        return path, nonmembers, None
    if str(path) == ALL_MEMBERS and n_train is not None:  # the whole train split; the non-members are the test split
        return list(range(n_train)), None, None
    path = Path(path)
    try:
        if path.suffix == ".npz":
            from robustmia.io import read_npz

            arrays = read_npz(path, "the membership file", "write member indices with numpy.savez(path, members=...)")
            found = {k: arrays[k].tolist() for k in ("members", "nonmembers") if k in arrays}
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
            found = {"members": data} if isinstance(data, list) else {k: data[k] for k in ("members", "nonmembers", "order") if k in data}
        else:
            rows = [cell.strip() for row in csv.reader(path.read_text().splitlines()) for cell in row if cell.strip()]
            if rows and not rows[0].lstrip("-").isdigit():
                rows = rows[1:]
            found = {"members": [int(r) for r in rows]}
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot read the membership file {path} ({type(e).__name__}: {e}); "
                        "write member indices as .npz (members), .json or .csv") from None
    members, nonmembers = found.get("members"), found.get("nonmembers")
    for name, values in (("members", members), ("nonmembers", nonmembers)):
        if values is not None and (not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)):
            raise UserError(f"{path}: {name} must be a flat list of integer indices")
    if not members:
        raise UserError(f"{path} lists no member indices")
    order = found.get("order")
    if order is not None and order not in ("split", "original"):
        raise UserError(f"{path}: order must be split (indices into the train split) or original (the dataset's own order), "
                        f"not {order!r}")
    return members, nonmembers, order


def check_indices(path: str, members: list[int], nonmembers: Optional[list[int]], n_train: int, split: str) -> None:
    """Member (and non-member) indices in range of the train split, unique, and disjoint."""
    for name, values in (("member", members), ("non-member", nonmembers or [])):
        bad = next((v for v in values if not 0 <= v < n_train), None)
        if bad is not None:
            hint = ("; indices into the dataset's own order (e.g. scikit-learn's load_digits()) take --index-order original"
                    if "train split" in split else "")
            raise UserError(f"{path}: {name} index {bad} is out of range: {split} has {n_train} examples (0..{n_train - 1}){hint}")
        if len(set(values)) != len(values):
            raise UserError(f"{path}: {name} indices repeat; list each example once")
    shared = sorted(set(members) & set(nonmembers or []))
    if shared:
        raise UserError(f"{path}: {len(shared)} indices are both members and non-members (e.g. {shared[0]}); they must be disjoint")


# --- building it (numerical libraries imported here, on use) --------------------------------------


class ExternalData:
    """The examples of an external target: ``members`` and ``nonmembers`` (ImageSets), a pool of
    further examples it never saw (``spare``), the images' DatasetInfo, and where each came from."""

    def __init__(self, target: ExternalTarget):
        import numpy as np

        from robustmia.data.catalog import DatasetInfo, dataset_info
        from robustmia.data.datasets import ImageSet, example_ids, load_dataset

        self.spare: Optional[ImageSet] = None
        if target.members is not None:
            self.info = dataset_info(target.dataset, target.data_dir)
            train, test = load_dataset(target.dataset, target.data_dir)
            members, nonmembers, order = read_membership(target.members, target.nonmembers, len(train))
            where = target.members if isinstance(target.members, str) else "the given indices"
            if target.members == ALL_MEMBERS:
                where = f"--members {ALL_MEMBERS} (the whole train split)"
            if (order or target.index_order) == "original":
                self._original_order(target, train, test, members, nonmembers, where)
                return
            check_indices(where, members, nonmembers, len(train), f"the {target.dataset} train split")
            self.members = train.subset(np.sort(members))
            if nonmembers is not None:
                self.nonmembers = train.subset(np.sort(nonmembers))
                self.sources = {"members": f"{len(members)} indices of the {target.dataset} train split listed in {where}",
                                "nonmembers": f"{len(nonmembers)} indices of the {target.dataset} train split listed in {where}"}
                self.spare = test
            else:
                self.nonmembers = test
                self.sources = {"members": f"{len(members)} indices of the {target.dataset} train split listed in {where}",
                                "nonmembers": f"the {target.dataset} test split ({len(test)} images), which the model never saw"}
        else:
            from robustmia.data.sets.imagefolder import INFO, classes_of, read_folder

            classes = sorted(set(classes_of(Path(target.members_dir))) | set(classes_of(Path(target.nonmembers_dir))))
            if len(classes) < 2:
                raise UserError(f"{target.members_dir} and {target.nonmembers_dir} hold {len(classes)} class folder(s); "
                                "a classifier's audit needs at least two")
            size, channels = target.image_size, 3
            mean, std, named = INFO.mean, INFO.std, None
            if target.dataset is not None:  # the folders hold that dataset's images: its shape, classes and normalisation
                named = dataset_info(target.dataset, target.data_dir)
                channels, size, mean, std = named.shape[0], named.shape[1], named.mean, named.std
                if named.num_classes and len(classes) > named.num_classes:
                    raise UserError(f"{target.members_dir} and {target.nonmembers_dir} hold {len(classes)} class folders, but "
                                    f"{target.dataset} has {named.num_classes} classes")
            self.members, self.nonmembers = (read_folder(Path(d), size, classes, channels, target.dataset)
                                             for d in (target.members_dir, target.nonmembers_dir))
            self.members.ids, self.nonmembers.ids = example_ids(len(self.members), 0), example_ids(len(self.nonmembers), 1)
            self.info = DatasetInfo(named.name if named else f"imagefolder-{size}", (channels, size, size),
                                    named.num_classes if named else len(classes), mean, std, "none",
                                    f"the images of {target.members_dir} and {target.nonmembers_dir}")
            self.sources = {"members": f"the {len(self.members)} images of {target.members_dir}",
                            "nonmembers": f"the {len(self.nonmembers)} images of {target.nonmembers_dir}"}


    def _original_order(self, target: ExternalTarget, train: Any, test: Any, members: list[int], nonmembers: Optional[list[int]],
                        where: str) -> None:
        """Members (and non-members) given as indices into the dataset's original order (data.catalog.original_positions),
        from either split; without non-members, every other example is one."""
        import numpy as np

        from robustmia.data.catalog import original_positions
        from robustmia.data.datasets import ImageSet

        n = len(train) + len(test)
        check_indices(where, members, nonmembers, n, f"{target.dataset} in its original order")
        split, position = original_positions(target.dataset, len(train), len(test))
        every = ImageSet.concat(train, test)
        at = np.where(split == 0, position, len(train) + position)  # original index -> position in train + test
        rest = sorted(set(range(n)) - set(members)) if nonmembers is None else nonmembers
        self.members, self.nonmembers = every.subset(at[np.sort(members)]), every.subset(at[np.sort(rest)])
        unused = sorted(set(range(n)) - set(members) - set(rest))  # neither: examples the model never saw, for the population
        self.spare = every.subset(at[unused]) if unused else None
        self.sources = {"members": f"{len(members)} indices of {target.dataset} in its original order listed in {where}",
                        "nonmembers": (f"{len(rest)} indices of {target.dataset} in its original order listed in {where}"
                                       if nonmembers is not None else
                                       f"the other {len(rest)} examples of {target.dataset}, which the model never saw")}


def external_target(dataset: Optional[str] = None, members: Any = None, **options: Any):
    """An ExternalTarget from keyword options, validated in one line;
    ``trained_with`` is ``METHOD`` or ``METHOD:EPS`` (e.g. ``pgd:8/255``), as the model's owner states it."""
    from robustmia.validation import validate

    given = {k: str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None and v != []}
    if given.get("reference_weights"):
        given["reference_weights"] = [str(w) for w in given["reference_weights"]]
    method, _, eps = str(given.pop("trained_with", "")).partition(":")
    if method:
        given["method"] = method
    if eps:
        given["eps"] = eps
    if isinstance(given.get("arch_args"), str):
        import json

        try:
            given["arch_args"] = json.loads(given["arch_args"])
        except json.JSONDecodeError as e:
            raise UserError(f"--arch-args is not JSON ({e.msg}); write e.g. '{{\"num_classes\": 10}}'") from None
    if isinstance(members, Path):
        members = str(members)
    elif members is not None and not isinstance(members, (str, list)):
        members = [int(i) for i in members]  # an array of indices
    # an entry point passed here (a flag, a keyword of the Python API) is named as code by the user
    return validate(ExternalTarget, {"dataset": dataset, "members": members, **given}, "external target").naming_code()


class ExternalModel(Target):
    """A model trained elsewhere as a kind of target (experiments.targets): its description (``spec``), the folder
    its evaluations, PGD points and audits are kept in, and (the Python API) the nn.Module itself. Its examples,
    model and supplied reference models are read once, on first use, all checked before anything is written."""

    def __init__(self, spec: ExternalTarget, folder: Path, model: Any = None):
        self.spec, self.folder, self.model = spec, Path(folder), model
        self.reference_recipe, self.reference_train = spec.reference_recipe, dict(spec.reference_train)
        self.eps = spec.eps
        self._loaded: dict[str, Any] = {}

    @classmethod
    def build(cls, dataset: Optional[str] = None, members: Any = None, *, model: Any = None, out: Any = None,
              **options: Any) -> "ExternalModel":
        """From keyword options (the API's and the CLI's; see :func:`external_target`), kept in ``out``, else in
        ``runs/external-<SHA-256 of its weights, first 12>``."""
        from robustmia.io import check_out

        spec = external_target(dataset, members, **options)
        spec.check_files()
        if out is not None:
            return cls.of(spec, check_out(out), model)
        from robustmia.io import file_sha256
        from robustmia.models.inference import state_sha256

        digest = file_sha256(spec.weights_file()) if spec.weights_file() is not None else state_sha256(model)
        return cls.of(spec, Path("runs") / f"external-{digest[:12]}", model)

    @staticmethod
    def of(spec: ExternalTarget, folder: Path, model: Any = None) -> "ExternalModel":
        """The target ``spec`` describes, of the kind its ``arch`` names (``KIND`` or ``KIND:NAME``;
        experiments.targets.ARCH_KINDS), else this one."""
        from robustmia.experiments.targets import ARCH_KINDS

        kind = str(spec.arch or "").partition(":")[0]
        if kind in ARCH_KINDS:
            import importlib

            module, _, name = ARCH_KINDS[kind].partition(":")
            return getattr(importlib.import_module(module), name)(spec, folder, model)
        return ExternalModel(spec, folder, model)

    def examples(self) -> Examples:
        if "data" not in self._loaded:
            self._loaded["data"] = ExternalData(self.spec)
        data = self._loaded["data"]
        return Examples(data.members, data.nonmembers, data.spare, data.info, data.sources)

    def check(self, device: Any) -> None:
        self.spec.check_files()
        self.load_model(device)

    def load_model(self, device: Any) -> Any:
        """Built once from its files (or ``model`` behind its normalisation), in eval mode."""
        if "model" not in self._loaded:
            from robustmia.models.external import wrap_model

            info = self.examples().info
            self._loaded["model"] = (wrap_model(self.model, info, self.spec.normalize, "the model", device) if self.model is not None
                                     else self._build(self.spec.weights_file(), device))
        return self._loaded["model"]

    def _build(self, weights: Path, device: Any, arch_args: Optional[dict[str, Any]] = None) -> Any:
        """Its architecture (with ``arch_args``, else its own) and ``weights`` (its own, or a supplied reference model's),
        in eval mode."""
        from robustmia.models.external import load_external_model

        t = self.spec
        return load_external_model(t.arch, weights, self.examples().info, normalize=t.normalize,
                                   arch_args=t.arch_args if arch_args is None else arch_args, device=device, code_named=t._code_named)

    def stated(self) -> tuple[Optional[str], Optional[str]]:
        return self.spec.arch, self.spec.method

    def dataset(self) -> tuple[Optional[str], Optional[str]]:
        return self.spec.dataset, self.spec.data_dir

    def setting_defaults(self) -> dict[str, Any]:
        return {"references": len(self.spec.reference_weights)} if self.spec.reference_weights else {}

    def can_train_references(self) -> bool:
        return super().can_train_references() or bool(self.spec.reference_weights)

    def provenance(self, population: Optional[int] = None) -> dict[str, Any]:
        """Architecture, weights and their SHA-256 (of the file, or of an in-memory model's tensors), normalisation,
        dataset, where members and non-members came from, and (given ``population``) where an audit's population did."""
        if "about" not in self._loaded:
            self._loaded["about"] = self._provenance()
        about = copy.deepcopy(self._loaded["about"])
        if population is not None:
            about["external"]["population"] = f"{population} examples the model never saw (non-members beyond the evaluation set)"
        return about

    def _provenance(self) -> dict[str, Any]:
        from robustmia.io import file_sha256
        from robustmia.models.inference import state_sha256

        t = self.spec
        if t.weights_file() is not None:
            weights, digest = str(t.weights_file()), file_sha256(t.weights_file())
        else:
            weights, digest = "an in-memory torch.nn.Module", state_sha256(self.model)
        normalize = None if t.normalize is None else {"mean": t.normalize[0], "std": t.normalize[1]}
        data = self.examples()
        return {"external": {"arch": t.arch or type(self.model).__name__, "arch_args": t.arch_args, "weights": weights,
                             "weights_sha256": digest, "normalize": normalize, "dataset": data.info.name,
                             "trained_with": {"method": t.method, "eps": t.eps}, **(data.sources or {}), **self.leaderboard()}}

    def leaderboard(self) -> dict[str, Any]:
        """What a public leaderboard says of it, into its provenance (a RobustBench model's: experiments.robustbench)."""
        return {}

    def model_key(self) -> str:
        return self.provenance()["external"]["weights_sha256"][:12]

    def describe(self) -> dict[str, Any]:
        about = self.provenance()["external"]
        return {"target": about, "dataset": about["dataset"], "model": about["arch"], "method": self.spec.method or "external"}

    def config_row(self) -> dict[str, Any]:
        return {"dataset": self.examples().info.name, "model": self.spec.arch, "method": self.spec.method or "external",
                "eps": self.spec.eps, "external": True}

    def evaluation_identity(self) -> list[Any]:
        return [self.spec.model_dump(mode="json")]

    def supplied_references(self, columns: Any, device: Any) -> tuple[Optional[list], Any, Optional[dict[str, Any]]]:
        """The user's reference models (built and checked now) and their keep masks on the evaluation set."""
        import numpy as np

        t = self.spec
        if not t.reference_weights:
            return None, None, None
        from robustmia.io import file_sha256, read_npz

        data = self.examples()
        n = len(data.members) + len(data.nonmembers)
        arrays = read_npz(t.reference_keep, "the keep masks", "save keep=(K, N) booleans with numpy.savez")
        if "keep" not in arrays:
            raise UserError(f"{t.reference_keep} holds no array keep; save keep=(K, N) booleans with numpy.savez")
        keep = np.asarray(arrays["keep"])
        if keep.shape != (len(t.reference_weights), n) or not np.isin(keep, (0, 1)).all():
            raise UserError(f"{t.reference_keep}: keep must be (K, N) booleans, K = {len(t.reference_weights)} reference models and "
                            f"N = {len(data.members)} members + {len(data.nonmembers)} non-members (in that order), got {keep.shape}")
        models = [self._build(Path(w), device) for w in t.reference_weights]
        about = {"supplied": [{"weights": w, "weights_sha256": file_sha256(Path(w))} for w in t.reference_weights],
                 "keep": t.reference_keep}
        return [lambda device, m=m: m for m in models], keep.astype(bool)[:, columns], about
