"""Auditing a model trained elsewhere: plain PyTorch code that never imports robustmia trains a
model, saves it as a .pt state dict (nested, with DataParallel's module. prefixes) and as
safetensors, and robustmia audits it from the CLI and from Python. The data are scikit-learn's
digits written as an npz dataset; the ImageFolder case uses GENERATED PNGs."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from tests.conftest import REPO, assert_one_line_error

TOY_MODELS = '''
from torch import nn


def mlp(num_classes=10):
    # the layers of robustmia's digits-mlp, so the same weights also load as arch digits-mlp
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, num_classes))
'''

PLAIN = '''
import json, sys
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.datasets import load_digits
from toy_models import mlp

digits = load_digits()
x = (digits.images / 16.0).astype(np.float32)[:, None]          # (N, 1, 8, 8) in [0, 1]
y = digits.target.astype(np.int64)
np.savez("data/train.npz", images=x[:1000], labels=y[:1000])
np.savez("data/test.npz", images=x[1000:], labels=y[1000:])
members = sorted(np.random.default_rng(0).permutation(1000)[:200].tolist())
json.dump({"members": members}, open("members.json", "w"))
torch.manual_seed(0)
model = mlp()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
xm, ym = torch.from_numpy(x[members]), torch.from_numpy(y[members])
for epoch in range(150):                                         # overfit the 200 members
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model((xm - 0.5) / 0.25), ym).backward()
    opt.step()
model.eval()
state = model.state_dict()
torch.save({"epoch": 150, "state_dict": {"module." + k: v for k, v in state.items()}}, "model.pt")
save_file(state, "model.safetensors")
with torch.no_grad():
    def confidence(images):
        p = torch.softmax(model((torch.from_numpy(images) - 0.5) / 0.25).double(), 1).numpy()
        return p
    pm, pn = confidence(x[members]), confidence(x[1000:])
np.savez("outputs.npz", members=pm[np.arange(200), y[members]], nonmembers=pn[np.arange(len(pn)), y[1000:]])

# 4 reference models of the same architecture, each on a random half of members + non-members (in that order)
xa, ya = np.concatenate([x[members], x[1000:]]), np.concatenate([y[members], y[1000:]])
keep = np.random.default_rng(1).random((4, len(ya))).argsort(0) < 2
phi = []
for k in range(4):
    torch.manual_seed(10 + k)
    ref = mlp()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    xi, yi = torch.from_numpy(xa[keep[k]]), torch.from_numpy(ya[keep[k]])
    for epoch in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ref((xi - 0.5) / 0.25), yi).backward()
        opt.step()
    save_file(ref.eval().state_dict(), f"ref{k}.safetensors")
def lira_phi(net):
    with torch.no_grad():
        z = net((torch.from_numpy(xa) - 0.5) / 0.25).double()
    zy = z[torch.arange(len(ya)), torch.from_numpy(ya)]
    return (zy - z.scatter(1, torch.from_numpy(ya)[:, None], float("-inf")).logsumexp(1)).numpy()
refs = []
for k in range(4):
    net = mlp()
    net.load_state_dict(load_file(f"ref{k}.safetensors"))
    refs.append(lira_phi(net.eval()))
np.savez("keep.npz", keep=keep)
np.savez("phi.npz", target=lira_phi(model), references=np.stack(refs), keep=keep)
assert not any(m.startswith("robustmia") for m in sys.modules), "the plain script imported robustmia"
'''


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain")
    (root / "data").mkdir()
    (root / "toy_models.py").write_text(TOY_MODELS)
    (root / "train_plain.py").write_text(PLAIN)
    r = subprocess.run([sys.executable, "train_plain.py"], cwd=root, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr
    return root


def _robustmia(root, *args):
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO / 'src'}"}
    return subprocess.run([sys.executable, "-m", "robustmia", *args], capture_output=True, text=True, env=env, cwd=root)


def _direct(root):
    """The confidence attack's metrics computed with scikit-learn from the plain model's own outputs."""
    z = np.load(root / "outputs.npz")
    scores = np.r_[z["members"], z["nonmembers"]]
    member = np.r_[np.ones(len(z["members"]), bool), np.zeros(len(z["nonmembers"]), bool)]
    fpr, tpr, _ = roc_curve(member, scores, drop_intermediate=False)
    return {"inference_accuracy": float(np.max(0.5 * (tpr + 1 - fpr))), "auprc": average_precision_score(member, scores),
            "roc_auc": roc_auc_score(member, scores), "tpr_at_1%": float(tpr[np.flatnonzero(fpr <= 0.01)[-1]])}


def _assert_equal(record, direct):
    assert record["n_members"] == 200 and record["n_nonmembers"] == 797
    for key in ("inference_accuracy", "auprc", "roc_auc"):
        assert abs(record[key] - direct[key]) < 1e-9, (key, record[key], direct[key])
    assert abs(record["tpr_at_fpr"]["0.01"] - direct["tpr_at_1%"]) < 1e-9
    assert record["roc_auc"] > 0.55  # the members were overfitted: there is something to find


TARGET = ["--normalize", "0.5/0.25", "--dataset", "npz", "--data-dir", "data", "--members", "members.json"]


def test_cli_audits_a_pt_state_dict_and_matches_sklearn(plain):
    r = _robustmia(plain, "attack", "--arch", "toy_models:mlp", "--weights", "model.pt", *TARGET,
                   "--attacks", "confidence,loss", "--bootstrap", "0", "--json", "--out", "audit-pt")
    assert r.returncode == 0, r.stderr
    _assert_equal(json.loads(r.stdout)[0], _direct(plain))
    folder = next((plain / "audit-pt" / "audit").glob("*/attacks.json")).parent
    saved = json.loads((folder / "attacks.json").read_text())
    assert saved["about"]["external"]["weights_sha256"] and "members.json" in saved["about"]["external"]["members"]
    # the audit's own report, from its folder
    r = _robustmia(plain, "report", str(folder))
    assert r.returncode == 0, r.stderr
    html = (folder / "report" / "report.html").read_text()
    assert saved["about"]["external"]["weights_sha256"] in html and "toy_models:mlp" in html and "confidence" in html


def test_python_api_audits_safetensors_a_zoo_architecture_and_a_module(plain, monkeypatch):
    import torch

    import robustmia

    monkeypatch.syspath_prepend(str(plain))
    monkeypatch.chdir(plain)
    direct = _direct(plain)
    result = robustmia.audit(arch="toy_models:mlp", weights="model.safetensors", normalize="0.5/0.25", dataset="npz", data_dir="data",
                             members="members.json", attacks="confidence", bootstrap=0, out="audit-st")
    _assert_equal(result.get("confidence").to_dict(), direct)
    # the same weights as robustmia's own digits-mlp architecture
    zoo = robustmia.audit(arch="digits-mlp", weights="model.safetensors", normalize="0.5/0.25", dataset="npz", data_dir="data",
                          members="members.json", attacks="confidence", bootstrap=0, out="audit-zoo")
    _assert_equal(zoo.get("confidence").to_dict(), direct)
    # a model object in memory, members as indices
    from toy_models import mlp
    from safetensors.torch import load_file

    model = mlp()
    model.load_state_dict(load_file("model.safetensors"))
    members = json.loads((plain / "members.json").read_text())["members"]
    live = robustmia.audit(model, "npz", members, data_dir="data", normalize="0.5/0.25", attacks="confidence", bootstrap=0, out="audit-live")
    _assert_equal(live.get("confidence").to_dict(), direct)
    assert live.about["external"]["weights"] == "an in-memory torch.nn.Module"
    ev = robustmia.evaluate(model, "npz", members, data_dir="data", normalize="0.5/0.25", eps="0.1", attack_steps=3, out="audit-live")
    assert ev["train_accuracy"] == 1.0 and ev["n_train"] == 200 and ev["n_test"] == 797
    assert ev["adv_test_accuracy"] < ev["test_accuracy"]
    del torch


def test_lira_with_references_from_a_recipe_and_the_mismatch_warning(plain, monkeypatch):
    import robustmia

    monkeypatch.syspath_prepend(str(plain))
    monkeypatch.chdir(plain)
    common = dict(weights="model.safetensors", normalize="0.5/0.25", dataset="npz", data_dir="data", members="members.json",
                  attacks="confidence,lira-fixed", references=4, eval_size=150, bootstrap=0, reference_recipe="cpu-digits-natural")
    matched = robustmia.audit(arch="digits-mlp", trained_with="natural", out="audit-matched",
                              reference_train={"model": "digits-mlp", "epochs": 20, "batch_size": 32, "train_size": None}, **common)
    assert [a.attack for a in matched.attacks] == ["confidence", "lira-fixed"] and "warnings" not in matched.about
    assert 0.0 <= matched.get("lira-fixed").metrics.roc_auc <= 1.0
    mismatched = robustmia.audit(arch="toy_models:mlp", trained_with="pgd:0.1", out="audit-mismatched",
                                 reference_train={"model": "digits-mlp", "epochs": 2, "train_size": None}, **common)
    (warning,) = mismatched.about["warnings"]
    assert "understate leakage" in warning and "architecture digits-mlp" in warning and "method natural" in warning


def test_lira_with_reference_models_the_user_trained(plain, monkeypatch):
    """K=4 reference checkpoints and their keep masks from the plain script: the audit's LiRA equals
    LiRA on the logit-scaled confidences the plain script computed itself."""
    import robustmia
    from robustmia.privacy.attacks import AttackInputs, run_attack

    monkeypatch.syspath_prepend(str(plain))
    monkeypatch.chdir(plain)
    result = robustmia.audit(arch="toy_models:mlp", weights="model.safetensors", normalize="0.5/0.25", dataset="npz", data_dir="data",
                             members="members.json", reference_weights=[f"ref{k}.safetensors" for k in range(4)], reference_keep="keep.npz",
                             attacks="lira-fixed,lira-offline-fixed", bootstrap=0, out="audit-supplied")
    z = np.load(plain / "phi.npz")
    inputs = AttackInputs(target={"lira": z["target"]}, labels=np.zeros(997, int), references=[{"lira": r} for r in z["references"]],
                          keep=z["keep"])
    for name in ("lira-fixed", "lira-offline-fixed"):
        ours = result.get(name)
        assert ours.to_dict()["n_references"] == 4
        assert np.allclose(ours.scores, run_attack(name, inputs).scores, rtol=1e-5, atol=1e-5)
    assert len(result.about["references"]["supplied"]) == 4 and "warnings" not in result.about
    # the same masks with the non-members' columns reversed (a layout the user got wrong): the audit says so
    keep = np.load(plain / "keep.npz")["keep"]
    members = len(json.loads((plain / "members.json").read_text())["members"])
    np.savez(plain / "keep-reversed.npz", keep=np.concatenate([keep[:, :members], keep[:, members:][:, ::-1]], axis=1))
    reversed_ = robustmia.audit(arch="toy_models:mlp", weights="model.safetensors", normalize="0.5/0.25", dataset="npz", data_dir="data",
                                members="members.json", reference_weights=[f"ref{k}.safetensors" for k in range(4)],
                                reference_keep="keep-reversed.npz", attacks="lira-fixed", bootstrap=0, out="audit-reversed")
    (warning,) = reversed_.about["warnings"]
    assert "non-members their keep masks mark IN" in warning and "may not follow the evaluation set's layout" in warning
    r = _robustmia(plain, "attack", "--arch", "toy_models:mlp", "--weights", "model.safetensors", *TARGET, "--reference-weights",
                   "ref0.safetensors", "--reference-weights", "ref1.safetensors", "--reference-keep", "keep.npz", "--attacks", "rmia")
    assert_one_line_error(r.returncode, r.stdout, r.stderr, "keep must be (K, N) booleans, K = 2")


def test_study_compares_an_external_target_with_trained_ones(plain):
    spec = plain / "study.yaml"
    spec.write_text(textwrap.dedent(f"""
        name: external
        defaults: {{dataset: npz, data_dir: {plain / 'data'}, model: digits-mlp, train_size: 200, epochs: 20, batch_size: 32}}
        targets:
          - {{name: natural, tables: [I], train: {{method: natural, eps: 0.1}}}}
          - name: theirs
            tables: [I]
            external: {{arch: "toy_models:mlp", weights: {plain / 'model.pt'}, normalize: 0.5/0.25, dataset: npz,
                        data_dir: {plain / 'data'}, members: {plain / 'members.json'}, method: natural, eps: 0.1,
                        reference_recipe: cpu-digits-natural, reference_train: {{model: digits-mlp, epochs: 3, train_size: null}}}}
        evaluation: {{attack_steps: 3}}
        audit: {{attacks: [confidence, adv-confidence, lira-fixed], references: 4, bootstrap: 20, eval_size: 150}}
    """))
    r = _robustmia(plain, "run", str(spec), "--out", "study", "--quiet", "--allow-code", "toy_models")  # the spec names code: allowed
    assert r.returncode == 0, r.stderr
    table = json.loads((plain / "study" / "report" / "tables" / "table1.json").read_text())
    assert [row[1] for row in table["rows"]] == ["digits-mlp", "toy_models:mlp"]
    html = (plain / "study" / "report" / "report.html").read_text()
    results = json.loads((plain / "study" / "results.json").read_text())
    assert results[1]["external"]["weights_sha256"] in html and "members.json" in html and "the npz test split" in html
    assert [a["attack"] for a in results[1]["attacks"]] == ["confidence", "adv-confidence", "lira-fixed"]
    # references of another architecture than the target's: the report says they understate leakage
    assert "Warnings" in html and "understate leakage" in html and "architecture digits-mlp vs the target" in html
    assert "the external model theirs" in (plain / "study" / "report" / "findings.md").read_text()


def test_a_pickle_that_would_run_code_is_refused_and_never_run(plain, tmp_path):
    import torch

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"state_dict": Evil()}, tmp_path / "evil.pt")
    r = _robustmia(plain, "attack", "--arch", "toy_models:mlp", "--weights", str(tmp_path / "evil.pt"), *TARGET,
                   "--attacks", "confidence", "--out", str(tmp_path / "out"))
    assert_one_line_error(r.returncode, r.stdout, r.stderr, "never unpickles code")
    assert not marker.exists() and not (tmp_path / "out").exists()


def _swap(old, new):
    return lambda args: [new if a == old else a for a in args]


@pytest.mark.parametrize("edit, fragment", [
    (_swap("toy_models:mlp", "torchvision:resnet18"), "do not fit torchvision:resnet18"),
    (lambda args: args + ["--arch-args", '{"num_classes": 3}'], "5.weight has shape (10, 256) in the file, (3, 256) in the architecture"),
    (_swap("0.5/0.25", "0.5,0.5,0.5/0.25,0.25,0.25"), "3 means and 3 stds for 1-channel"),
    (_swap("members.json", "bad-range.json"), "member index 1000 is out of range"),
    (_swap("members.json", "overlap.json"), "both members and non-members"),
    (lambda args: _swap("data", "one-class")(_swap("npz", "imagefolder")(args)), "only one class folder"),
], ids=["architecture", "classes", "normalisation", "range", "overlap", "one-class"])
def test_every_mistake_is_one_line_before_anything_is_written(plain, tmp_path, edit, fragment):
    (plain / "bad-range.json").write_text(json.dumps([0, 5, 1000]))
    (plain / "overlap.json").write_text(json.dumps({"members": [1, 2, 3], "nonmembers": [3, 4]}))
    for split in ("train", "test"):
        (plain / "one-class" / split / "only").mkdir(parents=True, exist_ok=True)
    args = edit(["--arch", "toy_models:mlp", "--weights", "model.pt", *TARGET])
    r = _robustmia(plain, "attack", *args, "--attacks", "confidence", "--out", str(tmp_path / "out"))
    assert_one_line_error(r.returncode, r.stdout, r.stderr, fragment)
    assert not (tmp_path / "out").exists()


def test_torchvision_resnet_on_an_imagefolder_of_generated_pngs(tmp_path):
    """torchvision's resnet18 with 3 classes (random weights, saved by plain torch), audited and
    evaluated on two folders of GENERATED PNGs (members / non-members)."""
    import torch
    import torchvision
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, n in (("members", 6), ("nonmembers", 5)):
        for c in ("a", "b", "c"):
            (tmp_path / folder / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / folder / c / f"{i}.png")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "resnet.pth")
    target = ["--arch", "torchvision:resnet18", "--arch-args", '{"num_classes": 3}', "--weights", str(tmp_path / "resnet.pth"),
              "--members-dir", str(tmp_path / "members"), "--nonmembers-dir", str(tmp_path / "nonmembers"), "--out", str(tmp_path / "out")]
    r = _robustmia(tmp_path, "attack", *target, "--bootstrap", "0", "--json")
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    assert [x["attack"] for x in records] == ["confidence", "loss", "entropy", "modified-entropy"]
    assert records[0]["n_members"] == 18 and records[0]["n_nonmembers"] == 15
    r = _robustmia(tmp_path, "evaluate", *target, "--eps", "2/255", "--attack-steps", "2", "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["n_train"] == 18 and ev["model"] == "torchvision:resnet18" and 0 <= ev["adv_test_accuracy"] <= ev["test_accuracy"] + 1e-9


def test_a_timm_architecture(tmp_path):
    """timm (an optional extra, installed by `make test`): a timm network saved by plain code, audited."""
    timm = pytest.importorskip("timm", reason="timm is an optional extra: pip install 'robustmia[timm]'")
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    rng = np.random.default_rng(0)
    for folder in ("members", "nonmembers"):
        for c in ("a", "b"):
            (tmp_path / folder / c).mkdir(parents=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / folder / c / f"{i}.png")
    torch.manual_seed(0)
    save_file(timm.create_model("resnet10t", pretrained=False, num_classes=2).state_dict(), str(tmp_path / "w.safetensors"))
    r = _robustmia(tmp_path, "attack", "--arch", "timm:resnet10t", "--arch-args", '{"num_classes": 2}', "--weights",
                   str(tmp_path / "w.safetensors"), "--members-dir", str(tmp_path / "members"), "--nonmembers-dir",
                   str(tmp_path / "nonmembers"), "--out", str(tmp_path / "out"), "--bootstrap", "0")
    assert r.returncode == 0, r.stderr
    assert "membership inference on timm:resnet10t" in r.stdout and "8 members + 8 non-members" in r.stdout


NEW_ATTACKS = "confidence,label-boundary,label-noise,grad-norm,input-grad-norm,qmia,verified-margin"


def test_attacks_beyond_the_seed_on_an_external_model_and_a_control(plain, monkeypatch):
    """The label-only, white-box, verified-margin and reference-free attacks run on a model trained
    elsewhere; on a control (the "members" are 200 training-split images the model never saw) every
    attack's empirical epsilon interval contains 0."""
    import robustmia

    monkeypatch.syspath_prepend(str(plain))
    monkeypatch.chdir(plain)
    common = dict(arch="toy_models:mlp", weights="model.safetensors", normalize="0.5/0.25", dataset="npz", data_dir="data",
                  attacks=NEW_ATTACKS, bootstrap=0, eps="0.05", boundary_bisections=5, probe_steps=5, noise_draws=8, population=300, eval_size=200)
    real = robustmia.audit(members="members.json", out="audit-new", **common)
    assert {a.attack for a in real.attacks} == set(NEW_ATTACKS.split(","))
    assert real.get("label-boundary").metrics.roc_auc > 0.55  # the overfit members sit farther from the boundary
    assert real.get("qmia", "quantile") is not None
    assert "queries" in real.get("label-boundary").details["probes"]["boundary-linf"]
    members = json.loads((plain / "members.json").read_text())["members"]
    unseen = sorted(set(range(1000)) - set(members))[:200]
    (plain / "unseen.json").write_text(json.dumps({"members": unseen}))
    control = robustmia.audit(members="unseen.json", out="audit-control", **common)
    for a in control.attacks:
        e = a.metrics.epsilon_estimate_one_run
        assert e["interval"][0] == 0.0 <= (e["interval"][1] if e["interval"][1] is not None else np.inf), (a.attack, e)
    assert max(a.metrics.epsilon_estimate_one_run["value"] for a in real.attacks) > 0  # the real members are found
