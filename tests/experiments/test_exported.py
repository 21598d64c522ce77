"""The exported kind of target (experiments.exported): a model saved with ``torch.export`` is evaluated and audited
by the CLI and the API exactly as the same network given as an nn.Module, and a bad program is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import cli

MEMBERS = list(range(200))  # train-split indices of digits


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small network fitted to its 200 members (it memorises them), saved as an nn.Module and as a torch.export program."""
    import torch
    from torch import nn

    from robustmia.data.datasets import load_dataset

    root = tmp_path_factory.mktemp("exported")
    train, _ = load_dataset("digits")
    x, y = train.images[MEMBERS], train.labels[MEMBERS]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    net.eval()
    batch = torch.export.Dim("batch", min=1)
    torch.export.save(torch.export.export(net, (x[:2],), dynamic_shapes=({0: batch},)), root / "model.pt2")
    torch.export.save(torch.export.export(net, (x[:2],)), root / "static.pt2")  # its batch fixed at two
    torch.save(net.state_dict(), root / "state.pt")
    five = nn.Sequential(nn.Flatten(), nn.Linear(64, 5)).eval()  # five classes for digits' ten
    torch.export.save(torch.export.export(five, (x[:2],), dynamic_shapes=({0: batch},)), root / "five.pt2")
    (root / "members.json").write_text(json.dumps(MEMBERS))
    return root, net


def test_an_exported_program_is_audited_as_the_module_it_was_exported_from(exported, tmp_path):
    from robustmia import audit

    root, net = exported
    options = dict(dataset="digits", members=MEMBERS, attacks="confidence,loss,adv-confidence", eval_size=150, eps="0.1",
                   attack_steps=3, bootstrap=0, device="cpu", progress=None)
    program = audit(arch="exported", weights=root / "model.pt2", out=tmp_path / "program", **options)
    module = audit(net, out=tmp_path / "module", **options)
    for a, b in zip(program.attacks, module.attacks):
        assert a.attack == b.attack and np.allclose(a.scores, b.scores, atol=1e-5)
    assert program.get("confidence").metrics.inference_accuracy > 0.6  # it memorised its members: a leak to find
    assert program.about["external"]["arch"] == "exported"


def test_the_cli_evaluates_and_audits_an_exported_program(exported, tmp_path):
    from robustmia import evaluate

    root, net = exported
    common = ["--arch", "exported", "--weights", str(root / "model.pt2"), "--dataset", "digits", "--members", str(root / "members.json")]
    scores = cli("evaluate", *common, "--eps", "none", "--json", cwd=tmp_path)
    assert scores.returncode == 0, scores.stderr
    direct = evaluate(net, dataset="digits", members=MEMBERS, eps="none", device="cpu", out=tmp_path / "direct")
    assert json.loads(scores.stdout)["train_accuracy"] == direct["train_accuracy"] > 0.95
    attack = cli("attack", *common, "--attacks", "confidence,loss", "--bootstrap", "0", "--json", "--out", "cli", cwd=tmp_path)
    assert attack.returncode == 0, attack.stderr
    assert [r["attack"] for r in json.loads(attack.stdout)] == ["confidence", "loss"]


@pytest.mark.parametrize("weights, extra, says", [
    ("state.pt", [], "is not a program saved by torch.export.save"),
    ("static.pt2", [], "dynamic batch"),
    ("model.pt2", ["--arch-args", '{"width": 2}'], "drop --arch-args"),
    ("five.pt2", [], "export a model that gives one logit per class"),
])
def test_a_bad_program_is_refused_in_one_line(exported, tmp_path, weights, extra, says):
    root, _ = exported
    r = cli("attack", "--arch", "exported", "--weights", str(root / weights), "--dataset", "digits",
                   "--members", str(root / "members.json"), "--attacks", "confidence", "--out", "x", *extra, cwd=tmp_path)
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x").exists()  # nothing written


def test_a_study_audits_an_exported_program_named_in_its_spec(exported, tmp_path):
    """A spec's external block names the kind by its arch, and the runner evaluates and audits it like any target."""
    root, _ = exported
    spec = tmp_path / "study.yaml"
    spec.write_text(f"""
name: deployed
targets:
  - name: deployed
    tables: [I]
    external: {{arch: exported, weights: {root / 'model.pt2'}, dataset: digits, members: {root / 'members.json'}, eps: 0.1}}
evaluation: {{attack_steps: 3, bound: none}}
audit: {{attacks: [confidence, loss], bootstrap: 0, eval_size: 100}}
""")
    r = cli("run", str(spec), "--out", "study", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (result,) = json.loads((tmp_path / "study" / "results.json").read_text())
    assert result["config"]["model"] == "exported" and result["external"]["arch"] == "exported"
    assert [a["attack"] for a in result["attacks"]] == ["confidence", "loss"] and result["evaluation"]["train_accuracy"] > 0.95
