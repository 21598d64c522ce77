"""The import rules of docs/explanations/design.md: every module of robustmia imports only from its own layer or the
layers below it (lazy imports inside functions included), so that nothing runs back up: no metric knows a report, no
model knows a training method, nothing below the command line prints or exits."""

from __future__ import annotations

import ast

from tests.conftest import REPO

# each layer, lowest first, and the top-level modules and packages of src/robustmia/ it holds
LAYERS = [
    ("foundation", {"robustmia", "errors", "io", "locks", "epsilon", "seeding", "validation", "progress", "packaged", "entry_points",
                    "registry"}),
    ("data", {"data"}),
    ("models", {"models"}),
    ("robust", {"robust"}),
    ("training", {"training"}),
    ("privacy", {"privacy"}),
    ("experiments", {"experiments"}),
    ("reporting", {"reporting"}),
    ("faces", {"api", "console", "cli_options"}),
    ("command line", {"cli", "cli_docs", "__main__"}),
]
LEVEL = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}
SRC = REPO / "src" / "robustmia"


def _unit(module: str) -> str:
    """The top-level module or package of ``robustmia.X.Y`` (``robustmia`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "robustmia":
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "robustmia":
                    yield node.lineno, alias.name


def test_every_module_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    units = {"robustmia" if u == "__init__" else u for u in units}
    assert units == set(LEVEL), (units - set(LEVEL), set(LEVEL) - units)


def test_no_module_imports_from_a_layer_above_its_own():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).with_suffix("")
        unit = "robustmia" if relative.parts == ("__init__",) else relative.parts[0]
        for line, module in _imports(path):
            if LEVEL[_unit(module)] > LEVEL[unit]:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {LAYERS[LEVEL[unit]][0]} imports {module} ({LAYERS[LEVEL[_unit(module)]][0]})")
    assert not wrong, "\n".join(wrong)


def test_nothing_below_the_faces_prints_or_exits():
    """Only the faces (the API's progress bar, the console, the CLI) write to the terminal or end the process."""
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).with_suffix("")
        unit = "robustmia" if relative.parts == ("__init__",) else relative.parts[0]
        if LEVEL[unit] >= LEVEL["api"]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            call = node.func if isinstance(node, ast.Call) else None
            name = call.id if isinstance(call, ast.Name) else (f"{getattr(call.value, 'id', '')}.{call.attr}" if isinstance(call, ast.Attribute) else "")
            if name in ("print", "sys.exit", "exit", "quit"):
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    assert not wrong, "\n".join(wrong)


def test_no_code_outside_the_methods_package_asks_for_a_method_by_name():
    """Each method owns its settings and checks (training/methods/): no other module compares a method with a method's
    name. The report's paper rows (reporting/) are the exception: they are the paper's own natural and PGD models, found
    by the names the paper gives them."""
    import re

    from robustmia.training.methods import METHODS

    names = "|".join(re.escape(m) for m in METHODS)
    compared = re.compile(rf"""(method|\bm)\W{{0,4}}\s*(==|!=|in|not in)\s*[(\[{{]?\s*["']({names})["']""")
    found = []
    for path in SRC.rglob("*.py"):
        part = path.relative_to(SRC).as_posix()
        if part.startswith(("training/methods/", "reporting/")):
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if compared.search(line):
                found.append(f"{part}:{i}: {line.strip()}")
    assert not found, "\n".join(found)
    assert compared.search('if config.method == "fgsm_rs":') and compared.search("m != 'trades'")  # the pattern finds the old code
