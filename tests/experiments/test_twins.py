"""Every shipped preset and every recipe, proven on the CPU before a GPU runs it: its tiny twin
(robustmia.experiments.twins) trains, evaluates, audits and reports end to end, on generated data in
the datasets' original file layouts (tests/generated.py: random pixels, not real data)."""

from __future__ import annotations

import json

import pytest
import yaml

from robustmia.api import run_study
from robustmia.experiments.presets import list_presets, preset_path
from robustmia.experiments.twins import recipes_spec, tiny_spec
from robustmia.models.names import CERTIFIABLE, TINY_ARGUMENTS, WRN_NAME
from robustmia.privacy.attacks import ATTACKS
from robustmia.training.recipes import list_recipes, load_recipe
from robustmia.validation import read_yaml
from tests.generated import data_root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return data_root(tmp_path_factory.mktemp("data"))


def _expected_attacks(attacks: list[str], model: str) -> set[str]:
    """What the audit of a target must run: every attack named, but certified-only ones on models the bounds cannot handle."""
    return {a for a in attacks if not (ATTACKS[a].certified and model not in CERTIFIABLE)}


def _check_study(out, spec: dict, twin: dict) -> list[dict]:
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results] == [t["name"] for t in spec["targets"]]
    for r, t in zip(results, twin["targets"]):
        assert 0.0 <= r["evaluation"]["train_accuracy"] <= 1.0, r["name"]
        if r["config"]["eps"]:
            assert "adv_test_accuracy" in r["evaluation"], r["name"]
        attacks = (t.get("audit") or {}).get("attacks") or twin["audit"].get("attacks") or []
        ran = {a["attack"] for a in r["attacks"]}
        assert _expected_attacks(attacks, r["config"]["model"]) <= ran, (r["name"], ran)
        assert r["config"]["train_size"] <= 8 and (r["config"]["epochs"] or 1) <= 1 and r["config"]["iterations"] in (None, 2)
    html = (out / "report" / "report.html").read_text()
    assert all(r["name"] in html for r in results)
    return results


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_the_tiny_twin_of_every_preset_trains_evaluates_audits_and_reports(name, data, tmp_path):
    spec = read_yaml(preset_path(name))
    twin = tiny_spec(spec)
    out = tmp_path / "study"
    if any(t.get("external") for t in spec["targets"]):  # published models (RobustBench's): their twin needs their weights
        from robustmia.errors import UserError

        with pytest.raises(UserError, match="no checkpoint at .* --download"):
            run_study(name, out, data_dir=str(data), device="cpu", tiny=True)
        assert not out.exists()  # (tests/experiments/test_robustbench.py runs a leaderboard of generated checkpoints)
        return
    for original, small in zip(spec["targets"], twin["targets"]):  # the same methods, settings and models (WRNs shrunk)
        merged = {**spec.get("defaults", {}), **(load_recipe(original["recipe"]) if original.get("recipe") else {}),
                  **original.get("train", {})}
        assert small["train"]["method"] == merged["method"]
        model = merged.get("model", "digits-cnn")
        assert small["train"].get("model", model) == ("wrn-10-1" if WRN_NAME.fullmatch(model) else model)
        assert {k: v for k, v in small["train"].items() if k not in ("train_size", "epochs", "iterations", "model", "model_args",
                                                                        "early_stop_holdout", "early_stop_steps")} == \
            {k: v for k, v in merged.items() if k not in ("train_size", "epochs", "iterations", "model", "model_args",
                                                           "early_stop_holdout", "early_stop_steps")}
        shrunk = TINY_ARGUMENTS.get(small["train"].get("model", model), {})  # the model's own arguments kept, but its size
        assert small["train"].get("model_args", {}) == {**merged.get("model_args", {}), **shrunk}
    run_study(name, out, data_dir=str(data), device="cpu", tiny=True)
    results = _check_study(out, spec, twin)
    for r in results:
        if r["config"]["method"] in ("dpsgd", "dp_pgd"):  # the frontier's DP targets train, evaluate and are audited
            assert r["dp"]["epsilon"] > 0 and r["attacks"], r["name"]


def test_the_tiny_twin_of_every_recipe_trains_evaluates_audits_and_reports(data, tmp_path):
    """The recipes no preset uses get a twin study of their own (the presets' twins train the others,
    with their reference models)."""
    used = {t.get("recipe") for name in list_presets() for t in read_yaml(preset_path(name))["targets"]}
    recipes = sorted(set(list_recipes()) - used)
    assert recipes and used & set(list_recipes())
    spec = recipes_spec(recipes, ["confidence", "loss", "adv-confidence", "verified-margin"])
    path = tmp_path / "recipes.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "study"
    run_study(path, out, data_dir=str(data), device="cpu")
    results = _check_study(out, spec, spec)
    for r in results:
        recipe = load_recipe(r["name"])
        assert r["config"]["method"] == recipe["method"] and r["config"]["dataset"] == recipe["dataset"]
