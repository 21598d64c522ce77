"""Membership files in the dataset's original order (``--index-order original``): a model trained on scikit-learn's own
digits, with its members listed as indices into ``load_digits()``, is audited on exactly those images."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

OWN = '''
import torch
from torch import nn


def build():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
'''


@pytest.fixture(scope="module")
def own_model(tmp_path_factory):
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    root = tmp_path_factory.mktemp("own")
    (root / "own.py").write_text(OWN)
    sys.path.insert(0, str(root))
    try:
        from own import build
    finally:
        sys.path.remove(str(root))
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    members = list(range(0, 1797, 2))  # every other image of scikit-learn's order: from both of robustmia's splits
    torch.manual_seed(0)
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(300):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[members]), y[members]).backward()
        optimizer.step()
    torch.save(model.state_dict(), root / "model.pt")
    (root / "members.json").write_text(json.dumps(members))
    (root / "members-ordered.json").write_text(json.dumps({"members": members, "order": "original"}))
    return root


def _robustmia(root, *args):
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO}"}
    return subprocess.run([sys.executable, "-m", "robustmia", *args], capture_output=True, text=True, env=env, cwd=root)


def test_members_in_scikit_learns_order_are_the_images_the_model_trained_on(own_model):
    common = ["--arch", "own:build", "--weights", "model.pt", "--dataset", "digits", "--eps", "none", "--json"]
    by_flag = _robustmia(own_model, "evaluate", *common, "--members", "members.json", "--index-order", "original")
    by_field = _robustmia(own_model, "evaluate", *common, "--members", "members-ordered.json")
    assert by_flag.returncode == 0 and by_field.returncode == 0, by_flag.stderr + by_field.stderr
    flag, field = json.loads(by_flag.stdout), json.loads(by_field.stdout)
    assert flag["train_accuracy"] == field["train_accuracy"] > 0.99  # its members: memorised
    assert flag["n_train"] == 899 and flag["n_test"] == 898 and "original order" in flag["target"]["members"]
    # the same indices read as train-split indices are other images (and run past the split): refused with the fix
    split = _robustmia(own_model, "evaluate", *common, "--members", "members.json")
    assert split.returncode == 2 and "--index-order original" in split.stderr and len(split.stderr.strip().splitlines()) == 1


def test_the_audit_scores_exactly_the_listed_images(own_model):
    from sklearn.datasets import load_digits

    r = _robustmia(own_model, "attack", "--arch", "own:build", "--weights", "model.pt", "--dataset", "digits", "--members",
                   "members-ordered.json", "--attacks", "confidence", "--bootstrap", "0", "--out", "audit-own", "--quiet")
    assert r.returncode == 0, r.stderr
    from robustmia.data.datasets import load_dataset
    from robustmia.privacy.results import AuditResult

    audit = AuditResult.load(next((own_model / "audit-own" / "audit").iterdir()))
    train, test = load_dataset("digits")
    every = np.concatenate([train.images.numpy(), test.images.numpy()])
    ids = np.concatenate([train.ids.numpy(), test.ids.numpy()])
    scored = every[np.searchsorted(ids, audit.ids)]  # (ids are sorted: train, then test)
    images = (load_digits().images / 16.0).astype(np.float32)
    listed = {images[i].tobytes() for i in range(0, 1797, 2)}
    members = [scored[i, 0].tobytes() in listed for i in np.flatnonzero(audit.member)]
    nonmembers = [scored[i, 0].tobytes() in listed for i in np.flatnonzero(~audit.member)]
    assert all(members) and not any(nonmembers)
