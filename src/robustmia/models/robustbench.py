"""RobustBench's model zoo by name: ``--arch robustbench:NAME`` with ``--threat-model Linf|L2|corruptions``
and the dataset (``cifar10`` or ``cifar100``), through the ``robustbench`` package, an optional extra
(``pip install 'robustmia[robustbench]'``; the core install does not grow).

The zoo's architectures are built offline; their weights come from a local checkpoint (``--weights``) or
RobustBench's own layout, ``MODEL_DIR/<dataset>/<threat model>/<NAME>.pt`` (``--model-dir``, default
``$ROBUSTMIA_MODEL_DIR``, else ``./models`` as RobustBench's own), read as robustmia reads every weights file: safetensors, or
``torch.load(weights_only=True)``, so a checkpoint that would need unpickling code is refused unread.
``--download`` fetches a missing checkpoint with RobustBench's own loader. A zoo model embeds its input
normalisation (robustmia adds none) and takes pixels in [0, 1].

``import robustbench`` fails on a current environment in two ways, both satisfied here, in this one
place, before it is imported: it imports ``autoattack`` (fra31's package, not on PyPI; ``pyautoattack``,
which RobustBench itself requires, is its PyPI packaging under another module name, so that module is
registered under the name RobustBench expects), and ``pkg_resources`` (gone from setuptools 81 on; where
it is missing, a stand-in offers the one function RobustBench calls, ``resource_filename``, for the length of
that import only: RobustBench keeps it, and no other code in the process meets a partial ``pkg_resources``).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any, Optional

from robustmia.errors import UserError

THREAT_MODELS = ("Linf", "L2", "corruptions")
DATASETS = ("cifar10", "cifar100")
DEFAULT_MODEL_DIR = "models"  # RobustBench's own default
LINF_EPS = 8 / 255  # the leaderboard's L-infinity eps: a zoo model's attacks use it unless its training eps is stated
# the attacks a RobustBench model gets unless told: none retrains its recipe (nobody can repeat a 50M-image one):
# the paper's thresholds on benign and PGD inputs, reference-free QMIA, label-only and white-box gradient norms;
# LiRA and RMIA join them when a (fast) reference recipe is given, with the warning that says how it differs
DEFAULT_ATTACKS = ("confidence", "loss", "entropy", "modified-entropy", "adv-confidence", "loss-increase", "qmia", "label-boundary",
                   "grad-norm", "input-grad-norm")
REFERENCE_ATTACKS = ("lira", "rmia")
PREFIX = "robustbench:"


def robustbench_name(arch: Optional[str]) -> Optional[str]:
    """The RobustBench name of an architecture ``robustbench:NAME``, else None."""
    arch = str(arch or "")
    return (arch[len(PREFIX):] or None) if arch.startswith(PREFIX) else None


def _compatible_imports() -> Optional[types.ModuleType]:
    """Make ``import robustbench`` work on a current environment (see the module docstring); the stand-in for
    ``pkg_resources`` it registered, if any, for the caller to take back once robustbench is imported."""
    try:
        importlib.import_module("autoattack")
    except ImportError:
        try:
            pyautoattack = importlib.import_module("pyautoattack")
        except ImportError:
            raise UserError("RobustBench models need the robustbench extra: pip install 'robustmia[robustbench]'") from None
        sys.modules["autoattack"] = pyautoattack
        for sub in ("state", "autopgd_base", "fab_pt", "square", "other_utils", "checks"):
            try:
                sys.modules[f"autoattack.{sub}"] = importlib.import_module(f"pyautoattack.{sub}")
            except ImportError:
                pass
    try:
        importlib.import_module("pkg_resources")
        return None
    except ImportError:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, resource: str) -> str:  # a path beside the module, as pkg_resources gives it
            return str(Path(importlib.import_module(package).__file__).parent / resource)

        shim.resource_filename = resource_filename
        shim.__doc__ = "robustmia's stand-in for setuptools' pkg_resources (only what RobustBench calls)"
        sys.modules["pkg_resources"] = shim
        return shim


def robustbench():
    """The robustbench package, imported (one line if it is not installed)."""
    shim = _compatible_imports()
    try:
        return importlib.import_module("robustbench")
    except ImportError as e:
        raise UserError(f"RobustBench models need the robustbench extra: pip install 'robustmia[robustbench]' ({e})") from None
    finally:
        if shim is not None and sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]


def check_names(dataset: Optional[str], threat_model: str) -> None:
    """The dataset and threat model, checked without importing anything."""
    if dataset not in DATASETS:
        raise UserError(f"RobustBench models are audited on {' or '.join(DATASETS)} (got dataset {dataset!r}); pass --dataset cifar10")
    if threat_model not in THREAT_MODELS:
        raise UserError(f"unknown threat model {threat_model!r}; choose one of: {', '.join(THREAT_MODELS)}")


def _zoo(dataset: str, threat_model: str) -> dict[str, Any]:
    robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    return model_dicts[BenchmarkDataset(dataset)][ThreatModel(threat_model)]


def names(dataset: str, threat_model: str) -> list[str]:
    return sorted(_zoo(dataset, threat_model))


def build(name: str, dataset: str, threat_model: str = "Linf") -> Any:
    """The untrained zoo architecture ``name`` (RobustBench builds it; no weights are fetched)."""
    check_names(dataset, threat_model)
    zoo = _zoo(dataset, threat_model)
    if name not in zoo:
        raise UserError(f"RobustBench has no {dataset} {threat_model} model {name!r}; its {len(zoo)} names: "
                        f"python -c \"import robustmia.models.robustbench as r; print(r.names('{dataset}', '{threat_model}'))\", "
                        "or the leaderboard at robustbench.github.io")
    try:
        return zoo[name]["model"]()
    except Exception as e:
        raise UserError(f"RobustBench could not build {name} ({type(e).__name__}: {e})") from None


def model_folder(model_dir: Optional[str]) -> Path:
    """``model_dir``, else ``$ROBUSTMIA_MODEL_DIR``, else RobustBench's own default ``./models``."""
    import os

    return Path(model_dir or os.environ.get("ROBUSTMIA_MODEL_DIR") or DEFAULT_MODEL_DIR)


def checkpoint(model_dir: Optional[str], name: str, dataset: str, threat_model: str = "Linf") -> Path:
    """Where RobustBench's layout keeps ``name``'s weights: MODEL_DIR/<dataset>/<threat model>/<NAME>.pt."""
    return model_folder(model_dir) / dataset / threat_model / f"{name}.pt"


def download(name: str, model_dir: Optional[str], dataset: str, threat_model: str = "Linf") -> Path:
    """Fetch ``name``'s checkpoint into RobustBench's layout with RobustBench's own loader (only with --download)."""
    path = checkpoint(model_dir, name, dataset, threat_model)
    if path.is_file():
        return path
    rb = robustbench()
    existed = [d for d in (path.parent, path.parent.parent, model_folder(model_dir)) if d.exists()]
    try:
        rb.load_model(model_name=name, model_dir=str(model_folder(model_dir)), dataset=dataset, threat_model=threat_model)
    except Exception as e:
        _remove_empty(path, existed)
        raise UserError(f"RobustBench could not download {name} into {path.parent} ({type(e).__name__}: {str(e)[:200]}); check the "
                        "network, or fetch the checkpoint by hand") from None
    if not path.is_file():
        _remove_empty(path, existed)
        raise UserError(f"RobustBench's loader left no checkpoint at {path}; fetch it by hand")
    return path


def _remove_empty(path: Path, existed: list[Path]) -> None:
    """A failed download leaves nothing behind: the empty folders its loader made (MODEL_DIR/<dataset>/<threat model>)
    are removed, innermost first, with a half-written checkpoint; folders that were there before are kept."""
    path.unlink(missing_ok=True)  # (it was not there before the download began)
    for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
        if folder in existed or not folder.is_dir() or any(folder.iterdir()):
            break
        folder.rmdir()
