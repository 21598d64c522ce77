import pytest

from robustmia.errors import UserError
from robustmia.training.config import TrainConfig
from robustmia.training.schedule import parse_drops, piecewise_lr
from robustmia.validation import read_yaml, validate


def test_madry_schedule_is_expressible():
    cfg = validate(TrainConfig, {"lr": 0.1, "lr_drops": "40000:0.01,60000:0.001", "lr_unit": "iteration", "iterations": 80000}, "t")
    assert cfg.lr_drops == [(40000, 0.01), (60000, 0.001)]
    lrs = [piecewise_lr(cfg.lr, cfg.lr_drops, t) for t in (0, 39_999, 40_000, 59_999, 60_000, 79_999)]
    assert lrs == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]


def test_yaml_config_with_list_drops(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: cifar10\nmodel: wrn-34-10\nlr: 0.1\nlr_drops: [[100, 0.01], [150, 0.001]]\nepochs: 200\n")
    cfg = validate(TrainConfig, read_yaml(path), str(path))
    assert cfg.lr_drops == [(100, 0.01), (150, 0.001)] and cfg.epochs == 200


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"epoch": 3}, "unknown key 'epoch'"),
        ({"epochs": "many"}, "epochs:"),
        ({"epochs": -1}, "epochs: Input should be greater than or equal to 1"),
        ({"epochs": 3, "iterations": 10}, "not both"),
        ({"lr_drops": "10:0.1,5:0.01"}, "strictly increasing"),
        ({"lr_drops": "10-0.1"}, "BOUNDARY:LR"),
        ({"method": "magic"}, "unknown training method"),
        ({"momentum": 1.5}, "momentum"),
    ],
)
def test_bad_configs_are_one_line_errors(data, fragment):
    with pytest.raises(UserError) as e:
        validate(TrainConfig, data, "cfg.yaml")
    msg = str(e.value)
    assert msg.startswith("cfg.yaml: ") and fragment in msg and "\n" not in msg


def test_parse_drops_empty():
    assert parse_drops("") == []
