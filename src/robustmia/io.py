"""File writes that never leave a half-written file behind (temporary name, then rename)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success flush, fsync and rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_out(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse an output folder that cannot be: a path that is a file, one below a file, or one whose
    first existing ancestor cannot be written (tried with an unnamed temporary file, which leaves
    nothing behind). Nothing is created."""
    from robustmia.errors import UserError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder; choose another {what}")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{what} {path} lies below {ancestor}, which is a file; choose another {what}")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as e:
        raise UserError(f"{what} {path} cannot be written ({ancestor}: {e.strerror}); choose a folder you can write") from None
    return path


def strict(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None, so that it is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Strict JSON (no NaN or Infinity), indented, keys sorted."""
    return json.dumps(strict(obj), indent=2, sort_keys=True, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path, "w") as f:
        f.write(dumps(obj) + "\n")


def read_json(path: str | os.PathLike, recover: str) -> Any:
    """A JSON file robustmia wrote; any damage (truncated, not UTF-8, not JSON) is one line naming
    the file and ``recover`` (how to get going again)."""
    from robustmia.errors import UserError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); {recover}") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise UserError(f"{path} is damaged ({type(e).__name__}); {recover}") from None


def read_jsonl(path: str | os.PathLike, recover: str) -> list[Any]:
    """The records of a JSON-lines log. A half-written last line (a crash mid-write) is dropped;
    damage anywhere else is one line naming the file and ``recover``."""
    from robustmia.errors import UserError

    if not Path(path).exists():
        return []
    try:
        lines = [line for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); {recover}") from None
    records = []
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
            records.append(record)
        except ValueError:
            if i == len(lines) - 1:
                break  # half-written by a process that died
            raise UserError(f"{path} is damaged at line {i + 1}; {recover}") from None
    return records


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_npz(path: str | os.PathLike, what: str, fix: str) -> dict[str, Any]:
    """Every array of an ``.npz`` file, read with ``allow_pickle=False``. Any damage is one line naming
    ``what`` the file is and ``fix``: missing, empty, not a zip archive, a member with a bad CRC or
    truncated, a pickled (object) array, or a single ``.npy`` array where an archive was expected."""
    import zipfile

    import numpy as np

    from robustmia.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"{what} {path} is empty (0 bytes); {fix}")
    with open(path, "rb") as f:
        head = f.read(6)
    if head == b"\x93NUMPY":
        raise UserError(f"{what} {path} is a single .npy array, not an .npz archive; {fix}")
    if head[:2] != b"PK":
        raise UserError(f"{what} {path} is not a readable .npz archive (not a zip file); {fix}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise UserError(f"{what} {path} is a single .npy array, not an .npz archive; {fix}")
            return {k: z[k] for k in z.files}
    except UserError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e).lower():
            raise UserError(f"{what} {path} holds a pickled (object) array, which robustmia never loads; {fix}") from None
        raise UserError(f"{what} {path} is damaged ({e}); {fix}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        detail = " ".join(str(e).split())[:120]
        raise UserError(f"{what} {path} is damaged ({type(e).__name__}: {detail}); {fix}") from None
