"""Every mistake a user can make ends in one line on stderr, exit code 2, and no half-written run."""

import json
import pickle

import pytest
import torch

from tests.conftest import assert_one_line_error, cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ok"
    r = cli("train", "--model", "digits-mlp", "--epochs", "1", "--out", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    return run


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--dataset", "emnist"], ["unknown dataset 'emnist'"]),
        (["--model", "resnet-50"], ["unknown model 'resnet-50'"]),
        (["--epochs", "-3"], ["epochs", "greater than or equal to 1"]),
        (["--dataset", "cifar10", "--model", "small-cnn", "--data-dir", "/nonexistent/cifar"], ["CIFAR-10 not found", "--download"]),
        (["--epochs", "abc"], ["--epochs", "valid integer"]),
        (["--method", "adversarial"], ["unknown training method"]),
    ],
)
def test_bad_train_flags(tmp_path, run_main, args, fragments):
    out = tmp_path / "run"
    code, stdout, err = run_main("train", "--out", str(out), "--quiet", *args)
    assert_one_line_error(code, stdout, err, *fragments)
    assert not out.exists()


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("dataset: digits\nepoch: 3\n", ["unknown key 'epoch'", "cfg.yaml"]),
        ("epochs: three\n", ["epochs", "cfg.yaml"]),
        ("batch_size: [1, 2]\n", ["batch_size"]),
        ("epochs: [\n", ["not valid YAML"]),
    ],
)
def test_bad_yaml_configs(tmp_path, run_main, text, fragments):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    out = tmp_path / "run"
    code, stdout, err = run_main("train", "--config", str(cfg), "--out", str(out), "--quiet")
    assert_one_line_error(code, stdout, err, *fragments)
    assert not out.exists()


def test_yaml_config_with_flag_override(tmp_path, run_main):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: digits-mlp\nepochs: 5\nseed: 2\n")
    code, _, err = run_main("train", "--config", str(cfg), "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0, err
    stored = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (stored["model"], stored["epochs"], stored["seed"]) == ("digits-mlp", 1, 2)


def test_existing_run_needs_resume_and_same_config(trained, run_main):
    code, out, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--out", str(trained), "--quiet")
    assert_one_line_error(code, out, err, "already holds a run", "--resume")
    code, out, err = run_main("train", "--model", "digits-mlp", "--epochs", "1", "--lr", "0.2", "--out", str(trained), "--resume", "--quiet")
    assert_one_line_error(code, out, err, "different lr")


def _copy(run, dest):
    import shutil

    shutil.copytree(run, dest)
    return dest


def test_truncated_checkpoint(trained, tmp_path, run_main):
    run = _copy(trained, tmp_path / "t")
    f = run / "checkpoint" / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    code, out, err = run_main("evaluate", str(run), "--json")
    assert_one_line_error(code, out, err, "damaged or truncated")
    assert out == ""


def test_unreadable_safetensors_without_checksum(tmp_path):
    from robustmia.errors import UserError
    from robustmia.training.checkpoint import read_safetensors

    f = tmp_path / "w.safetensors"
    f.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(UserError, match="not a readable safetensors file"):
        read_safetensors(f)


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_pickle_checkpoint_is_never_unpickled(trained, tmp_path, run_main, writer):
    run = _copy(trained, tmp_path / writer)
    f = run / "checkpoint" / "model.safetensors"
    marker = tmp_path / "unpickled"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    if writer == "torch.save":
        torch.save({"w": torch.zeros(2), "bomb": Bomb()}, f)
    else:
        f.write_bytes(pickle.dumps({"bomb": Bomb()}))
    code, out, err = run_main("evaluate", str(run))
    assert_one_line_error(code, out, err, "pickle", "never unpickles")
    assert not marker.exists()


def test_damaged_meta_and_missing_run(trained, tmp_path, run_main):
    run = _copy(trained, tmp_path / "m")
    (run / "checkpoint" / "meta.json").write_text("{")
    assert_one_line_error(*run_main("evaluate", str(run)), "not valid JSON")
    assert_one_line_error(*run_main("evaluate", str(tmp_path / "nope")), "does not exist")
    assert_one_line_error(*run_main("evaluate", str(tmp_path)), "holds no run")


def test_errors_from_a_real_process_have_no_traceback(tmp_path):
    r = cli("train", "--dataset", "nope", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("robustmia: error: unknown dataset")


def test_safetensors_whose_header_length_starts_like_a_pickle_still_loads(tmp_path):
    # the first byte of a safetensors file is the low byte of its header length: 0x80 is legal
    from safetensors.torch import save_file

    from robustmia.training.checkpoint import read_safetensors

    for pad in range(300):
        f = tmp_path / "w.safetensors"
        save_file({"w": torch.arange(3.0)}, str(f), metadata={"pad": "x" * pad})
        if f.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("could not make a header length with low byte 0x80")
    assert torch.equal(read_safetensors(f)["w"], torch.arange(3.0))
