"""Turning YAML files and flags into validated pydantic objects, with one-line errors."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from robustmia.errors import UserError

M = TypeVar("M", bound=pydantic.BaseModel)


DEVICE = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")


def check_device(device: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` (or mps, xpu), checked before anything is written (torch is
    imported only to ask for a CUDA GPU)."""
    if not DEVICE.fullmatch(device):
        raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if device.startswith("cuda"):  # checked here, before anything is written, not where the first tensor moves
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            have = f"only {count} CUDA GPU{'s' if count != 1 else ''}" if count else "no CUDA GPU"
            raise UserError(f"device {device!r} asked for, but this machine has {have}; use --device cpu or auto")
    return device


SHOWN = 80  # characters of an offending value a message quotes


def cut(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters (the last three an ellipsis) where it is longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: Any) -> str:
    """``repr(value)``, cut to SHOWN characters: a line a person reads, whatever was given."""
    return cut(repr(value), SHOWN)


def describe_errors(err: pydantic.ValidationError) -> str:
    """The first offending field, what is wrong with it and what it was (cut short), and how many more there are."""
    errors = err.errors()
    e = errors[0]
    key = ".".join(str(p) for p in e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        first = f"unknown key {key!r}"
    elif not key:  # a check over several keys: its message names them
        first = msg
    else:
        first = f"{key}: {msg} (got {short(e.get('input'))})"
    return first + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


def validate(cls: type[M], data: Any, source: str) -> M:
    """Build ``cls`` from ``data``; any problem becomes one :class:`UserError` line naming ``source``."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except pydantic.ValidationError as e:
        raise UserError(f"{source}: {describe_errors(e)}") from None


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text (binary, or UTF-16?); save it as UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def key_values(pairs: list[str], flag: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--set``) as settings, each value read as YAML (``1.5``, ``true``, ``8/255`` stays a string)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} {pair!r}: write KEY=VALUE, e.g. {flag} dp_noise=1.5")
        if key.strip() in out:
            from robustmia.errors import warn

            warn(f"{flag} {key.strip()} is given twice; the last value ({value}) is used")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out
