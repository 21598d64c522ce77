"""The one place robustmia imports and runs Python code that a user names: architecture entry
points (``package.module:factory``) and attack plugins (``$ROBUSTMIA_PLUGINS``).

Data files never run code: YAML, JSON, npz, safetensors and ``.pt`` state dicts are read as data.
Code runs only where the user named it as code:

- an entry point given as a flag (``robustmia attack --arch mymodule:factory``) or to the Python
  API (``audit(arch="mymodule:factory", ...)``) is named as code by that act;
- an entry point written in a study spec runs only if its module is allowed: ``--allow-code
  MODULE`` of ``robustmia run``/``reproduce`` (``allow_code=[...]`` in the API) or the variable
  ``ROBUSTMIA_ALLOW_CODE=MODULE[,MODULE...]``; allowing a package allows its sub-modules. Anything
  else is refused before the module is imported;
- attack plugins: the modules named in ``ROBUSTMIA_PLUGINS``.

Such modules are looked for in the current folder first, as ``python -m`` does. Whatever they do
when imported or called (raise, exit) ends in one line naming them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, Optional

from robustmia.errors import UserError

ALLOW_VARIABLE = "ROBUSTMIA_ALLOW_CODE"
PLUGINS_VARIABLE = "ROBUSTMIA_PLUGINS"


def names(text: Optional[str | Iterable[str]]) -> list[str]:
    """Module names from ``a,b`` text or an iterable of such texts."""
    if text is None:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    return [m.strip() for p in parts for m in str(p).split(",") if m.strip()]


def allowed_modules(extra: Optional[Iterable[str]] = None) -> list[str]:
    """The modules whose entry points a spec may name: ``$ROBUSTMIA_ALLOW_CODE`` and ``extra``."""
    return names(os.environ.get(ALLOW_VARIABLE)) + names(extra)


def is_entry_point(arch: Optional[str]) -> bool:
    """Whether ``arch`` names Python code (``package.module:factory``) rather than an architecture by name."""
    if not arch or ":" not in arch:
        return False
    return arch.partition(":")[0] not in ("torchvision", "timm", "robustbench")


def is_allowed(module: str, allowed: Iterable[str]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


def check_allowed(entry: str, where: str, allowed: Iterable[str]) -> None:
    """Refuse (one line, before any import) an entry point whose module is not allowed."""
    module = entry.partition(":")[0]
    if not is_allowed(module, allowed):
        raise UserError(f"{where}: arch {entry!r} is Python code (an entry point), and robustmia runs code from a spec only "
                        f"where you allow it: pass --allow-code {module} (or set {ALLOW_VARIABLE}={module})")


@contextlib.contextmanager
def _current_folder_first() -> Iterator[None]:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def import_user_module(module: str, what: str) -> ModuleType:
    """Import the user's ``module`` (the current folder first); anything it does wrong is one line."""
    with _current_folder_first():
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.split(".")[0] == e.name.split(".")[0]:
                raise UserError(f"cannot find the module {module!r} of {what} (looked in the current folder {os.getcwd()} and "
                                "on sys.path); run from the folder that holds it, or add that folder to PYTHONPATH") from None
            raise UserError(f"the module {module!r} of {what} cannot be imported: {e}") from None
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # an exception, or sys.exit() at import time
            raise UserError(f"the module {module!r} of {what} failed when imported ({_describe(e)}); fix it") from None


def entry_point(entry: str, what: str) -> Callable[..., Any]:
    """The callable named by ``package.module:attribute``."""
    module, _, attribute = entry.partition(":")
    found = import_user_module(module, what)
    target = getattr(found, attribute, None)
    if target is None:
        raise UserError(f"the module {module!r} has no {attribute!r}; check {what} ({entry})")
    if not callable(target):
        raise UserError(f"{entry} is a {type(target).__name__}, not a function or class; check {what}")
    return target


def call_user_code(fn: Callable[..., Any], what: str, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; whatever it raises (or a sys.exit) is one line naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except UserError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        raise UserError(f"{what} failed ({_describe(e)})") from None


def load_plugins() -> None:
    """Import the attack plugins named in ``$ROBUSTMIA_PLUGINS`` (they register their attacks)."""
    for module in names(os.environ.get(PLUGINS_VARIABLE)):
        import_user_module(module, f"the plugin named in {PLUGINS_VARIABLE} (fix it or unset the variable)")


def _describe(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r})"
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
