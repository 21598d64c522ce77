"""RobustBench's zoo by name, offline: two zoo architectures with GENERATED checkpoints (random weights saved in
RobustBench's own format and layout, MODEL_DIR/cifar10/Linf/<NAME>.pt) on GENERATED CIFAR-10 files, built,
loaded without network, evaluated and audited end to end; refusals of checkpoints that would run code and of
names RobustBench does not know; the whole-split members shorthand; the leaderboard preset and its report."""

from __future__ import annotations

import importlib.util
import json
import textwrap

import numpy as np
import pytest
import torch

if importlib.util.find_spec("robustbench") is None:  # not imported here: robustmia.models.robustbench makes it importable
    pytest.skip("RobustBench models need the robustbench extra: pip install 'robustmia[robustbench]'", allow_module_level=True)

from robustmia.api import audit, evaluate, run_study  # noqa: E402
from robustmia.models import robustbench  # noqa: E402
from tests.conftest import assert_one_line_error  # noqa: E402
from tests.generated import write_cifar10  # noqa: E402

ENTRIES = ("Wong2020Fast", "Gowal2021Improving_R18_ddpm_100m")  # a PreActResNet-18 and DeepMind's ResNet-18: two zoo architectures


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    write_cifar10(root / "data" / "cifar10", n_train=120, n_test=300)
    for i, name in enumerate(ENTRIES):
        torch.manual_seed(i)
        model = robustbench.build(name, "cifar10", "Linf")
        path = root / "models" / "cifar10" / "Linf" / f"{name}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        state = model.state_dict()
        # RobustBench's checkpoints come both ways: a plain state dict, or one under state_dict with DataParallel's prefix
        torch.save(state if i == 0 else {"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return root


def _options(zoo, name: str) -> dict:
    return dict(arch=f"robustbench:{name}", data_dir=str(zoo / "data"), model_dir=str(zoo / "models"), device="cpu")


@pytest.mark.parametrize("name", ENTRIES)
def test_a_zoo_model_is_built_by_name_loaded_offline_evaluated_and_audited(zoo, name, tmp_path, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("robustmia reached for the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    e = evaluate(None, "cifar10", "all", attack_steps=2, max_examples=8, out=tmp_path / "e", **_options(zoo, name))
    assert e["n_train"] == 120 and e["n_test"] == 300 and "adv_test_accuracy" in e and e["perturbation"]["eps"] == pytest.approx(8 / 255)
    result = audit(None, "cifar10", "all", attacks="confidence,adv-confidence,qmia,input-grad-norm", eval_size=16, attack_steps=2,
                   bootstrap=0, permutations=0, out=tmp_path / "a", **_options(zoo, name))
    assert {a.attack for a in result.attacks} == {"confidence", "adv-confidence", "qmia", "input-grad-norm"}
    about = result.about["external"]
    assert about["robustbench"] == {"name": name, "threat_model": "Linf"} and about["normalize"].startswith("the model's own")
    assert "the whole train split" in about["members"] and "examples the model never saw" in about["population"]


def test_the_default_attacks_of_a_zoo_model_need_no_retraining(zoo, tmp_path):
    from robustmia.models.robustbench import DEFAULT_ATTACKS as ZOO_ATTACKS

    result = audit(None, "cifar10", "all", eval_size=8, attack_steps=1, bootstrap=0, permutations=0, boundary_bisections=1,
                   probe_steps=1, out=tmp_path / "a", **_options(zoo, ENTRIES[0]))
    assert [a.attack for a in result.attacks] == list(ZOO_ATTACKS)


def test_the_whole_split_shorthand_gives_the_records_of_an_explicit_members_file(zoo, tmp_path):
    (tmp_path / "members.json").write_text(json.dumps(list(range(120))))
    common = dict(attacks="confidence,loss", eval_size=20, bootstrap=20, **_options(zoo, ENTRIES[0]))
    shorthand = audit(None, "cifar10", "all", out=tmp_path / "a", **common).records()
    explicit = audit(None, "cifar10", str(tmp_path / "members.json"), out=tmp_path / "b", **common).records()
    keys = ("attack", "inference_accuracy", "roc_auc", "auprc", "tpr_at_fpr", "ci95", "n_members", "n_nonmembers", "chance")
    assert [{k: r[k] for k in keys} for r in shorthand] == [{k: r[k] for k in keys} for r in explicit]


def test_a_checkpoint_that_would_run_code_is_refused_and_never_runs(zoo, tmp_path, run_main):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "models" / "cifar10" / "Linf" / f"{ENTRIES[0]}.pt"
    bad.parent.mkdir(parents=True)
    torch.save({"state_dict": Payload()}, bad)
    assert_one_line_error(*run_main("evaluate", "--arch", f"robustbench:{ENTRIES[0]}", "--dataset", "cifar10", "--members", "all",
                                    "--data-dir", str(zoo / "data"), "--model-dir", str(tmp_path / "models"), "--out", str(tmp_path / "o")),
                          "never unpickles code")
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_names_robustbench_does_not_know_and_missing_weights_are_one_line(zoo, tmp_path, run_main):
    base = ["--dataset", "cifar10", "--members", "all", "--data-dir", str(zoo / "data"), "--model-dir", str(zoo / "models")]
    assert_one_line_error(*run_main("evaluate", "--arch", "robustbench:NoSuch2099Model", *base), "no checkpoint", "--download")
    (zoo / "models" / "cifar10" / "Linf" / "NoSuch2099Model.pt").write_bytes(b"")
    try:
        assert_one_line_error(*run_main("evaluate", "--arch", "robustbench:NoSuch2099Model", *base), "has no cifar10 Linf model",
                              "robustmia.models.robustbench", "names")
    finally:
        (zoo / "models" / "cifar10" / "Linf" / "NoSuch2099Model.pt").unlink()
    assert_one_line_error(*run_main("evaluate", "--arch", f"robustbench:{ENTRIES[0]}", *base, "--normalize", "0.5/0.25"),
                          "embed their own normalisation")
    assert_one_line_error(*run_main("evaluate", "--arch", f"robustbench:{ENTRIES[0]}", *base, "--threat-model", "Linf2"), "threat_model")


def test_the_leaderboard_preset_without_weights_is_refused_and_writes_nothing(tmp_path, run_main, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*run_main("reproduce", "robustbench-cifar10", "--out", str(tmp_path / "lb")), "no checkpoint at", "Standard",
                          "--download")
    assert not (tmp_path / "lb").exists()


LEADERBOARD = """
name: leaderboard-test
x-zoo: &zoo {{dataset: cifar10, members: all, threat_model: Linf, model_dir: {models}, data_dir: {data}}}
targets:
  - name: Wong2020Fast
    external: {{arch: "robustbench:Wong2020Fast", <<: *zoo, method: fgsm_rs,
               leaderboard: {{name: Wong2020Fast, architecture: PreActResNet-18, extra_data: none, clean: 83.34, autoattack: 43.21,
                             paper: Fast is better than free}}}}
  - name: Gowal2021Improving_R18_ddpm_100m
    external: {{arch: "robustbench:Gowal2021Improving_R18_ddpm_100m", <<: *zoo,
               leaderboard: {{name: Gowal2021Improving_R18_ddpm_100m, architecture: PreActResNet-18, extra_data: 100M generated images,
                             clean: 87.35, autoattack: 58.50, paper: Improving robustness using generated data}}}}
evaluation: {{attack_steps: 2, bound: none, max_examples: 8}}
audit: {{attacks: [confidence, adv-confidence], eval_size: 16, bootstrap: 20, attack_steps: 2}}
"""


def test_a_test_scale_leaderboard_writes_its_table_figure_and_findings_and_renders(zoo, tmp_path):
    from tests.experiments.test_study import _chromium

    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(LEADERBOARD.format(models=zoo / "models", data=zoo / "data")))
    run_study(spec, tmp_path / "out", device="cpu")
    table = json.loads((tmp_path / "out" / "report" / "tables" / "leaderboard.json").read_text())
    assert [row[0] for row in table["rows"]] == ["Wong2020Fast", "Wong2020Fast", "Gowal2021Improving_R18_ddpm_100m",
                                                 "Gowal2021Improving_R18_ddpm_100m"]
    assert table["rows"][0][3:5] == ["83.34", "43.21"] and table["rows"][2][2] == "100M generated images"
    findings = (tmp_path / "out" / "report" / "findings.md").read_text()
    assert "Gowal2021Improving_R18_ddpm_100m (extra data, robust accuracy 58.5%)" in findings
    assert (tmp_path / "out" / "report" / "figures" / "leaderboard.png").is_file()
    import subprocess

    browser = _chromium()
    page = tmp_path / "page.html"
    probe = """<script>window.addEventListener('load', () => { document.body.setAttribute('data-probe', JSON.stringify({
      leaderboard: [...document.images].filter(i => i.alt === 'leaderboard' && i.naturalWidth > 300).length,
      rows: [...document.querySelectorAll('caption')].filter(c => c.textContent.startsWith('Privacy leaderboard'))
              .map(c => c.closest('table').querySelectorAll('tbody tr').length)})); });</script></body>"""
    page.write_text((tmp_path / "out" / "report" / "report.html").read_text().replace("</body>", probe))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()], capture_output=True, text=True).stdout
    data = json.loads(dom.split('data-probe="', 1)[1].split('"', 1)[0].replace("&quot;", '"'))
    assert data == {"leaderboard": 1, "rows": [4]}, data


def test_robustbench_imports_without_autoattack_or_pkg_resources_and_in_one_place():
    """RobustBench imports `autoattack` (not on PyPI) and `pkg_resources` (gone from setuptools 81): models.robustbench
    registers pyautoattack under the first name and, for the length of the import, a stand-in for the second's one
    function: RobustBench keeps it, and the process is left without a partial pkg_resources for others to meet."""
    import sys

    rb = robustbench.robustbench()
    assert sys.modules["autoattack"].__name__ in ("autoattack", "pyautoattack")  # fra31's code under either name
    stand_in = sys.modules["robustbench.loaders"].pkg_resources
    assert callable(stand_in.resource_filename) and rb.__name__ == "robustbench"
    if "robustmia's stand-in" in (stand_in.__doc__ or ""):  # no setuptools' pkg_resources here
        assert "pkg_resources" not in sys.modules
    assert np.isfinite(robustbench.build("Wong2020Fast", "cifar10")(torch.rand(1, 3, 32, 32)).detach().numpy()).all()


def test_a_failed_download_leaves_no_folders_behind(tmp_path, monkeypatch):
    """RobustBench's loader makes MODEL_DIR/<dataset>/<threat model>/ and may leave half a checkpoint; when it fails, both
    go, and a folder that was there before stays."""
    import types

    from robustmia.errors import UserError
    from robustmia.models import robustbench as rb_module

    def load_model(model_name, model_dir, dataset, threat_model):
        folder = tmp_path / "models" / dataset / threat_model
        folder.mkdir(parents=True)
        (folder / f"{model_name}.pt").write_bytes(b"half")
        raise ConnectionError("no network")

    monkeypatch.setattr(rb_module, "robustbench", lambda: types.SimpleNamespace(load_model=load_model))
    (tmp_path / "kept").mkdir()
    with pytest.raises(UserError, match="could not download Wong2020Fast"):
        rb_module.download("Wong2020Fast", str(tmp_path / "models"), "cifar10")
    assert not (tmp_path / "models").exists() and (tmp_path / "kept").is_dir()
