"""Tiny twins of study specs and recipes: the same datasets, models, methods, settings and attacks,
with sizes, epochs, iterations and attack steps cut to the minimum, so that a study meant for a GPU
is proven end to end (train, evaluate, audit, report) on a CPU in seconds before it runs for hours.

A model is shrunk only where its size is a parameter: a WideResNet becomes WRN-10-1, and an
architecture with width or depth arguments gets its smallest ones (``models.names.TINY_ARGUMENTS``);
every other model is kept as it is. One setting changes for cost, not size: certified bounds (of the
evaluation's verified accuracy and of the verified-margin attacks) become ``crown-ibp``, which walks the
same graph with IBP and one CROWN pass; the exact bounds of Wong et al.'s CIFAR-10 residual network
take minutes per image on a CPU (``crown`` about 160 s, ``wong-kolter`` about 75 s, measured here).
``robustmia reproduce NAME --tiny`` runs a preset's twin; the tests run the twin of every shipped
preset and of every recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustmia.models.names import TINY_ARGUMENTS, WRN_NAME

MEMBERS = 8  # members per target (and as many non-members)
EVALUATED = 6  # members (and non-members) an audit scores
EPOCHS, ITERATIONS = 1, 2
STEPS = 2  # PGD steps of evaluation and of the audit's PGD inputs
BOOTSTRAP = 10
HOLDOUT = 10  # early stopping's held-out images (its minimum)
CANARIES = 8  # candidates of a one-run DP audit
PROBES = {"boundary_bisections": 2, "probe_steps": 2, "noise_draws": 4, "adv_restarts": 1}
BOUND = "crown-ibp"  # the certified bound of a twin (see the module docstring)


def tiny_model(model: str) -> str:
    return "wrn-10-1" if WRN_NAME.fullmatch(model) else model


def tiny_defaults(defaults: dict[str, Any]) -> dict[str, Any]:
    """A spec's ``defaults`` with only the keys it has cut (every target's merged settings are cut in full by
    ``tiny_train``), so that a target's recipe can still give iterations where the defaults give no epochs."""
    out = dict(defaults)
    for key, small in (("iterations", ITERATIONS), ("epochs", EPOCHS)):
        if out.get(key) is not None:
            out[key] = small
    if out.get("train_size") is not None:
        out["train_size"] = min(int(out["train_size"]), MEMBERS)
    return out


def tiny_train(settings: dict[str, Any]) -> dict[str, Any]:
    """A target's training settings (its defaults, recipe and ``train`` merged) cut to the minimum."""
    out = dict(settings)
    if "model" in out:
        out["model"] = tiny_model(str(out["model"]))
        args = TINY_ARGUMENTS.get(out["model"])
        if args:
            out["model_args"] = {**out.get("model_args", {}), **args}
    out["train_size"] = min(int(out.get("train_size") or MEMBERS), MEMBERS)
    if out.get("iterations") is not None:
        out["iterations"] = ITERATIONS
    else:
        out["epochs"] = EPOCHS
    if out.get("early_stop"):
        out["early_stop_holdout"] = HOLDOUT
        out["early_stop_steps"] = min(int(out.get("early_stop_steps", STEPS)), STEPS)
    return out


def _references(attacks: list[str]) -> int:
    from robustmia.privacy.attacks import ATTACKS

    need = max((ATTACKS[a].min_references for a in attacks if a in ATTACKS and ATTACKS[a].references), default=2)
    return max(2, need + need % 2)


def tiny_audit(audit: dict[str, Any], attacks: list[str]) -> dict[str, Any]:
    """An audit block cut to the minimum: as few reference models as ``attacks`` need, small evaluation sets."""
    return {**audit, "eval_size": EVALUATED, "bootstrap": BOOTSTRAP, "attack_steps": STEPS, **PROBES, "references": _references(attacks),
            "bound": BOUND}


def tiny_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The tiny twin of a study spec (as read from its YAML, ``x-*`` anchors resolved)."""
    from robustmia.privacy.attacks import default_attacks
    from robustmia.training.recipes import load_recipe

    out = {k: v for k, v in spec.items() if not str(k).startswith("x-")}
    out["name"] = f"{spec.get('name', 'study')}-tiny"
    out["description"] = f"the tiny twin of {spec.get('name', 'the study')}: {spec.get('description', '')}".strip()
    defaults = dict(spec.get("defaults", {}))
    out["defaults"] = tiny_defaults(defaults)
    study_attacks = list(spec.get("audit", {}).get("attacks") or default_attacks())
    targets = []
    for t in spec["targets"]:
        t = dict(t)
        if t.get("external") is None:
            merged = {**defaults, **(load_recipe(t["recipe"]) if t.get("recipe") else {}), **t.get("train", {})}
            t["train"] = tiny_train(merged)
        if t.get("audit"):
            t["audit"] = tiny_audit(t["audit"], list(t["audit"].get("attacks") or study_attacks))
        if t.get("dp_audit"):  # a one-run DP audit keeps its attacks and canary kind, with the fewest canaries (and the grid of guesses)
            canaries = dict(t["dp_audit"].get("canaries", {}))
            t["dp_audit"] = {**{k: v for k, v in t["dp_audit"].items() if k != "k"}, "canaries": {**canaries, "count": CANARIES}}
        targets.append(t)
    out["targets"] = targets
    attacks = study_attacks + [a for t in targets for a in (t.get("audit") or {}).get("attacks", [])]
    out["audit"] = tiny_audit(dict(spec.get("audit", {})), attacks)
    evaluation = spec.get("evaluation", {})
    out["evaluation"] = {**evaluation, "attack_steps": STEPS, "max_examples": EVALUATED, "restarts": 1,
                         "bound": "none" if evaluation.get("bound") == "none" else BOUND}
    if spec.get("track_every"):
        out["track_every"] = 1
    return out


def recipes_spec(recipes: list[str], attacks: list[str]) -> dict[str, Any]:
    """One study with a target per recipe, each trained, evaluated and audited with ``attacks``
    (those its architecture allows), as the tiny twin of every recipe at once."""
    targets = [{"name": name, "tables": [], "recipe": name} for name in recipes]
    return tiny_spec({"name": "recipes", "description": "every recipe", "targets": targets, "audit": {"attacks": attacks}})


def twin_file(path: Path) -> Path:
    """The tiny twin of the spec file ``path``, written beside robustmia's other temporary files
    (the same spec always gives the same file, so that a twin's study can be resumed)."""
    import hashlib
    import tempfile

    import yaml

    from robustmia.validation import read_yaml

    text = yaml.safe_dump(tiny_spec(read_yaml(path)), sort_keys=False)
    out = Path(tempfile.gettempdir()) / f"robustmia-tiny-{hashlib.sha256(text.encode()).hexdigest()[:12]}-{Path(path).name}"
    if not out.is_file() or out.read_text() != text:
        out.write_text(text)
    return out
