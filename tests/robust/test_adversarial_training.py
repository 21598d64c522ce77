"""Adversarial training through the one loop, and the evaluation CLI's attack columns."""

import json

import pytest

from robustmia.errors import UserError
from robustmia.training.config import TrainConfig
from robustmia.training.objectives import training_attack
from robustmia.validation import validate
from tests.conftest import assert_one_line_error, evaluate_json, train_recipes


def test_training_attack_defaults_follow_the_papers():
    madry = training_attack(validate(TrainConfig, {"method": "pgd", "eps": "8/255"}, "t"))
    assert (madry.steps, madry.mode, madry.random_start) == (7, "train", True)
    assert madry.alpha == pytest.approx(2 / 255)
    fast = training_attack(validate(TrainConfig, {"method": "fgsm_rs", "eps": "8/255"}, "t"))
    assert (fast.steps, fast.random_start, fast.alpha) == (1, True, pytest.approx(1.25 * 8 / 255))
    tr = training_attack(validate(TrainConfig, {"method": "trades", "eps": 0.031, "attack_steps": 10}, "t"))
    assert (tr.steps, tr.mode) == (10, "eval")


def test_adversarial_methods_need_an_eps():
    with pytest.raises(UserError, match="needs eps > 0"):
        validate(TrainConfig, {"method": "pgd"}, "t")


@pytest.fixture(scope="module")
def digits_pair(tmp_path_factory):
    return train_recipes(tmp_path_factory.mktemp("pair"), "cpu-digits-natural", "cpu-digits-pgd")


def test_pgd_training_is_clearly_more_robust_on_digits(digits_pair):
    # both recipes store eps 0.1: the natural twin is attacked at it
    nat, adv = (evaluate_json(digits_pair / recipe) for recipe in ("cpu-digits-natural", "cpu-digits-pgd"))
    assert nat["perturbation"] == adv["perturbation"] and adv["perturbation"]["eps"] == 0.1 and adv["perturbation"]["steps"] == 20
    assert adv["adv_test_accuracy"] > nat["adv_test_accuracy"] + 0.15, (nat, adv)
    assert adv["test_accuracy"] > 0.9 and adv["adv_train_accuracy"] > 0.9
    for key in ("train_accuracy", "test_accuracy", "adv_train_accuracy", "adv_test_accuracy"):
        assert 0 <= adv[key] <= 1


@pytest.mark.parametrize("method", ["trades", "fgsm_rs"])
def test_other_objectives_train(tmp_path, run_main, method):
    code, out, err = run_main("train", "--model", "digits-mlp", "--method", method, "--eps", "0.1", "--epochs", "6",
                              "--out", str(tmp_path / method), "--quiet", "--json")
    assert code == 0, err
    assert json.loads(out)["test_accuracy"] > 0.5


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--eps", "-0.1"], "eps"),
        (["--eps", "2"], "write 8/255, not 8"),
        (["--eps", "eight/255"], "cannot read 'eight/255'"),
        (["--eps", "8/0"], "cannot read '8/0'"),
        (["--eps", "8/255", "--attack-steps", "0"], "attack_steps"),
        (["--eps", "8/255", "--step-size", "-1/255"], "step_size: must be positive"),
        (["--eps", "8/255", "--step-size", "0"], "step_size: must be positive"),
    ],
)
def test_bad_attack_flags_in_train(tmp_path, run_main, flags, fragment):
    out = tmp_path / "r"
    code, stdout, err = run_main("train", "--method", "pgd", "--out", str(out), "--quiet", *flags)
    assert_one_line_error(code, stdout, err, fragment)
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--eps", "2"], "write 8/255, not 8"),
        (["--eps", "x"], "cannot read 'x'"),
        (["--attack-steps", "0"], "steps"),
        (["--step-size", "0"], "step_size: must be positive"),
        (["--restarts", "0"], "restarts"),
    ],
)
def test_bad_attack_flags_in_evaluate(digits_pair, run_main, flags, fragment):
    code, stdout, err = run_main("evaluate", str(digits_pair / "cpu-digits-pgd"), "--json", *flags)
    assert_one_line_error(code, stdout, err, fragment)
    assert stdout == ""
