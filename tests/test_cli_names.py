"""The command line hands its options to the API by name: every option a command forwards is a keyword that the API
function (or the settings it validates them into) accepts under that very name, so renaming one fails here rather
than breaking its flag silently."""

from __future__ import annotations

import inspect

import pytest

from robustmia import api, cli

LOCAL = {"run_dir", "device", "quiet", "as_json", "out", "recipe", "config", "download", "resume", "set_"}  # the command's own


def _accepted(function, *models) -> set[str]:
    explicit = {p.name for p in inspect.signature(function).parameters.values() if p.kind is not p.VAR_KEYWORD}
    return explicit | {name for model in models for name in model.model_fields} | set(api.EXTERNAL_KEYS)


def _forwarded(command) -> set[str]:
    return {p for p in inspect.signature(command).parameters} - LOCAL


@pytest.mark.parametrize("command, function, models", [
    ("train", "train_config", ("robustmia.training.config:TrainConfig",)),
    ("evaluate", "evaluate", ()),
    ("attack", "audit", ("robustmia.experiments.settings:AuditSettings",)),
])
def test_every_forwarded_option_is_a_keyword_of_the_api(command, function, models):
    import importlib

    classes = [getattr(importlib.import_module(m.split(":")[0]), m.split(":")[1]) for m in models]
    accepted = _accepted(getattr(api, function), *classes)
    if command == "train":  # train's flags are TrainConfig fields alone (train_config's own keywords are the command's)
        accepted = {name for c in classes for name in c.model_fields}
    unknown = sorted(_forwarded(getattr(cli, command)) - accepted)
    assert not unknown, f"robustmia {command} forwards {unknown}, which robustmia.api.{function} does not accept by that name"


def test_the_check_catches_a_renamed_keyword(monkeypatch):
    """The check above can fail: were audit's eval_size renamed, the flag --eval-size would be reported."""
    from robustmia.experiments.settings import AuditSettings

    fields = dict(AuditSettings.model_fields)
    fields.pop("eval_size")
    monkeypatch.setattr(AuditSettings, "model_fields", fields)
    accepted = _accepted(api.audit, AuditSettings)
    assert "eval_size" in _forwarded(cli.attack) - accepted
