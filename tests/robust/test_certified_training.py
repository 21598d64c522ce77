"""Certified training on digits, and verified accuracy in `robustmia evaluate`."""

import json

import pytest

from tests.conftest import assert_one_line_error, evaluate_json, train_recipes


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_recipes(tmp_path_factory.mktemp("certified"), "cpu-digits-crown-ibp", "cpu-digits-wong-natural")


def test_crown_ibp_certifies_most_of_digits_and_natural_almost_nothing(runs):
    # eps 0.1, stored by both recipes
    cert, nat = (evaluate_json(runs / recipe) for recipe in ("cpu-digits-crown-ibp", "cpu-digits-wong-natural"))
    assert cert["verification"] == {"bound": "crown", "eps": 0.1}
    assert cert["verified_test_accuracy"] > 0.5, cert
    assert nat["verified_test_accuracy"] < 0.1, nat
    # verified <= PGD accuracy <= clean accuracy: a certificate holds against every attack
    for r in (cert, nat):
        assert r["verified_test_accuracy"] <= r["adv_test_accuracy"] + 1e-9 <= r["test_accuracy"] + 2e-9


def test_other_bounds_and_no_bound(runs, run_main):
    code, out, err = run_main("evaluate", str(runs / "cpu-digits-crown-ibp"), "--json", "--bound", "ibp", "--max-examples", "200")
    assert code == 0, err
    ibp = json.loads(out)
    assert ibp["verification"]["bound"] == "ibp" and ibp["n_attacked_test"] == 200
    code, out, err = run_main("evaluate", str(runs / "cpu-digits-crown-ibp"), "--json", "--bound", "none")
    assert code == 0 and "verified_test_accuracy" not in json.loads(out)
    assert_one_line_error(*run_main("evaluate", str(runs / "cpu-digits-crown-ibp"), "--bound", "exact"), "unknown bound 'exact'")


@pytest.mark.parametrize("model, layer", [("small-cnn", "MaxPool2d"), ("wrn-10-1", "WideResNet")])
def test_uncertifiable_models_are_refused_before_training(tmp_path, run_main, model, layer):
    out = tmp_path / "r"
    code, stdout, err = run_main("train", "--model", model, "--method", "ibp", "--eps", "0.1", "--out", str(out), "--quiet")
    assert_one_line_error(code, stdout, err, "cannot certify", layer)
    assert not out.exists()
