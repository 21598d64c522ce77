"""The CLI reference, written from the typer app itself (the docs' hook puts it into reference/cli.md at build
time), so it cannot drift from ``robustmia COMMAND --help``: every command's summary, usage, arguments and
options with their help and defaults."""

from __future__ import annotations

from typing import Any


def _click():
    """The click that typer runs on (typer vendors its own)."""
    try:
        from typer import _click as click
    except ImportError:  # older typer: the click package
        import click
    return click


def _command(name: str, command: Any) -> list[str]:
    click = _click()
    ctx = click.Context(command, info_name=f"robustmia {name}")
    lines = [f"## `robustmia {name}`", "", (command.help or "").strip().split("\n\n")[0].replace("\b", "").strip(), "",
             "```text", " ".join(command.collect_usage_pieces(ctx)).join([f"robustmia {name} ", ""]), "```", ""]
    rows = []
    for p in command.get_params(ctx):
        if p.param_type_name == "argument":
            rows.append((p.name.upper(), f"argument: {(getattr(p, 'help', None) or '')}".replace("|", "\\|"), ""))
        elif p.param_type_name == "option" and not p.hidden and "--help" not in p.opts:
            names = " / ".join(p.opts + p.secondary_opts)
            default = "" if p.default is None or p.default is False or p.default == () else f"`{p.default}`"
            rows.append((names, (p.help or "").replace("|", "\\|"), default))
    if rows:
        lines += ["| option | what | default |", "|---|---|---|"]
        lines += [f"| `{n}` | {h} | {d} |" for n, h, d in rows]
        lines.append("")
    return lines


def markdown() -> str:
    """Markdown of every command of ``robustmia``, in the order the app defines them."""
    import typer

    from robustmia.cli import app

    group = typer.main.get_command(app)
    out = []
    for name in group.list_commands(None):
        out += _command(name, group.get_command(None, name))
    return "\n".join(out)


def options(command: str) -> list[str]:
    """The option names of one command, as the reference lists them."""
    import typer

    from robustmia.cli import app

    cmd = typer.main.get_command(app).get_command(None, command)
    ctx = _click().Context(cmd, info_name=f"robustmia {command}")
    return [o for p in cmd.get_params(ctx) if p.param_type_name == "option" and "--help" not in p.opts for o in p.opts + p.secondary_opts]


def settings(model: Any, title: str) -> str:
    """A Markdown table of a settings model's keys (a pydantic model): name, type, default."""
    rows = [f"### {title}", "", "| key | type | default |", "|---|---|---|"]
    for name, f in model.model_fields.items():
        kind = str(f.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "").replace("|", "or")
        default = f.default_factory() if f.default_factory is not None else f.default
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `{name}` | {kind} | {shown} |")
    return "\n".join(rows) + "\n"


def spec_keys() -> str:
    """Every key of a study spec and of the settings it holds, written from the models that validate them."""
    from robustmia.data.canaries import Canaries
    from robustmia.experiments.external import ExternalTarget
    from robustmia.experiments.settings import AuditSettings
    from robustmia.experiments.spec import DPAuditSpec, EvaluationSpec, StudySpec, TargetSpec
    from robustmia.training.config import TrainConfig

    parts = [(StudySpec, "the study (top level)"), (TargetSpec, "a target (targets: [...])"), (TrainConfig, "train (and defaults, recipes)"),
             (ExternalTarget, "external (a model trained elsewhere)"), (AuditSettings, "audit (the study's, or a target's own)"),
             (EvaluationSpec, "evaluation"), (DPAuditSpec, "dp_audit (a target's one-run DP audit)"), (Canaries, "dp_audit.canaries")]
    return "\n".join(settings(model, title) for model, title in parts)
