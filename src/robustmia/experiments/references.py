"""Reference models trained with a recipe other than the target's own: the config they get, the warning
that they may understate leakage, and the short key of their settings that names their folder.

A run robustmia trained gets references of its own recipe by default; ``--reference-recipe NAME``
(with ``--reference-train KEY=VALUE`` over it) trains them with another, e.g. a fast recipe for a
target whose own recipe takes hours. A model trained elsewhere always needs one (or supplied models).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from robustmia.errors import UserError


def reference_config(recipe: str, overrides: dict[str, Any], dataset: Optional[str], data_dir: Optional[str]):
    """The TrainConfig of the references: the named recipe with ``overrides`` over it, on the target's dataset."""
    from robustmia.training.config import TrainConfig
    from robustmia.training.recipes import load_recipe
    from robustmia.validation import validate

    if dataset is None:
        raise UserError("reference models train on a dataset: give the images as a dataset (e.g. imagefolder with train/ and test/) "
                        "and a members file, or leave out the attacks that need reference models")
    merged = {**load_recipe(recipe), **overrides, "dataset": dataset, "data_dir": data_dir}
    config = validate(TrainConfig, merged, f"reference recipe {recipe}")
    check_reference(config, f"reference recipe {recipe}")
    return config


def check_reference(config: Any, where: str) -> None:
    """What would stop the reference models training, found before any folder is made: the dataset's files, a certified
    method on a network its bounds cannot handle, and an architecture that cannot take the dataset's images."""
    from robustmia.data.catalog import dataset_info
    from robustmia.training.objectives import check_model
    from robustmia.training.run import build_initial_model

    config.model_copy(update={"train_size": None}).check(where)  # (a reference trains on what the audit gives it, not train_size)
    info = dataset_info(config.dataset, config.data_dir)
    try:
        model = build_initial_model(config, info)
        check_model(config.method, model, info.shape)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def reference_warning(recipe_name: str, recipe: Any, arch: Optional[str], method: Optional[str], eps: float) -> Optional[str]:
    """Why the references may not share the target's recipe (its architecture ``arch``, its stated ``method``
    and ``eps``), or None when they do as far as stated."""
    from robustmia.training.methods import uses_eps

    differences = []
    if arch is None:
        differences.append(f"architecture {recipe.model} vs the target's own network, given as a model object, which robustmia "
                           "cannot compare with it")
    elif recipe.model != arch:
        differences.append(f"architecture {recipe.model} vs the target's {arch}")
    if method is None:
        differences.append("the target's training method is not stated (trained_with), so it could not be compared")
    elif recipe.method != method or (uses_eps(recipe.method) and abs(recipe.eps - eps) > 1e-9):
        # a natural recipe's eps only names its robust twin's evaluation: it does not change training
        differences.append(f"method {recipe.method} at eps {recipe.eps:.4g} vs the target's {method} at eps {eps:.4g}")
    if not differences:
        return None
    return (f"reference models were trained with recipe {recipe_name}, which may differ from the target's "
            f"({'; '.join(differences)}): LiRA, RMIA, shadow-model and shadow-threshold results then understate leakage")


def config_key(config: Any) -> str:
    """A short name of a reference recipe's training settings (what makes its models), for their folder."""
    identity = {k: v for k, v in config.identity().items() if k != "seed"}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
