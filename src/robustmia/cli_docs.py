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


def markdown_reference() -> str:
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
    import re

    from pydantic import BaseModel

    rows = []
    for name, f in model.model_fields.items():
        kind = re.sub(r"robustmia(\.\w+)+\.(\w+)", r"\2", str(f.annotation)).replace("typing.", "").replace("<class '", "").replace("'>", "")
        if f.is_required():
            shown = "required"
        else:
            default = f.default_factory() if f.default_factory is not None else f.default
            shown = ("its own keys, below" if isinstance(default, BaseModel) else
                     "" if default is None else f"`{default}`")
        rows.append((f"`{name}`", kind, shown))
    return f"### {title}\n\n" + _table(("key", "type", "default"), rows)


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


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    cells = lambda r: "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |"
    return "\n".join([cells(header), "|" + "---|" * len(header)] + [cells(r) for r in rows]) + "\n"


def catalog(kind: str) -> str:
    """A Markdown table of one of robustmia's registries, written from the registry itself: ``presets``,
    ``recipes``, ``models``, ``methods`` or ``attacks``."""
    if kind == "presets":
        from robustmia.experiments.presets import list_presets

        return _table(("preset", "what"), [(f"`{k}`", v) for k, v in list_presets().items()])
    if kind == "recipes":
        from robustmia.training.recipes import list_recipes

        return _table(("recipe", "what"), [(f"`{k}`", v) for k, v in list_recipes().items()])
    if kind == "models":
        from robustmia.models.names import ENTRIES

        return _table(("model", "what", "arguments", "certified bounds"),
                      [(f"`{e.name}`", e.description, ", ".join(e.arguments), "yes" if e.certifiable else f"no ({e.blocking})")
                       for e in ENTRIES.values()])
    if kind == "methods":
        from robustmia.training.methods import REGISTRY

        return _table(("method", "family", "what", "own settings", "stacks"),
                      [(f"`{m.name}`", m.family + (", DP-SGD" if m.private else ""), m.help,
                        ", ".join(f"`{k}`={v}" for k, v in m.settings.items()), "yes" if m.stacks else "no")
                       for m in REGISTRY.values()])
    if kind == "attacks":
        from robustmia.privacy.attacks import ATTACKS

        return _table(("attack", "sees", "what", "needs"),
                      [(f"`{a.name}`", a.family, a.help, ", ".join(filter(None, [
                          f"{a.min_references}+ reference models" if a.references else "",
                          "PGD points" if a.adversarial else "", f"{a.population} population examples" if a.population else "",
                          "a certifiable model" if a.certified else "", "default" if a.default else ""])))
                       for a in ATTACKS.values()])
    raise ValueError(f"unknown catalog {kind!r}")


CATALOGS = ("presets", "recipes", "models", "methods", "attacks")


def fill(markdown: str) -> str:
    """A page's Markdown with every build-time marker replaced by what the code says (docs/hooks)."""
    marks = {"<!-- the CLI reference is written here at build time -->": markdown_reference,
             "<!-- the spec keys are written here at build time -->": spec_keys}
    marks.update({f"<!-- the {k} are written here at build time -->": (lambda k=k: catalog(k)) for k in CATALOGS})
    for mark, make in marks.items():
        if mark in markdown:
            markdown = markdown.replace(mark, make())
    return markdown
