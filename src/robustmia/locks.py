"""One writer per folder: an OS file lock on a run or study folder, held while a process writes
it. The lock is taken on the folder itself (``flock`` on its descriptor), so it dies with its
process (a kill -9 never leaves a stale lock) and a refused process changes nothing; the holder
writes its PID to ``.owner`` so the refusal can name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from robustmia.errors import UserError

OWNER_FILE = ".owner"


@contextlib.contextmanager
def folder_lock(folder: Path, again: str = "run the same command again with --resume") -> Iterator[None]:
    """Hold ``folder`` (created if missing) for the block; another process holding it is one line naming
    its PID, and ``again`` (how to continue once it is stopped)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        try:
            holder = (folder / OWNER_FILE).read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise UserError(f"{folder} is in use by another robustmia process (PID {holder}); wait for it to finish, "
                        f"or stop it and {again}") from None
    try:
        (folder / OWNER_FILE).write_text(f"{os.getpid()}\n")
        yield
    finally:
        os.close(fd)  # releases the lock


def holder(folder: Path) -> str | None:
    """The PID (as its .owner says) of another process holding ``folder``, or None when no one holds it. Takes nothing."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            return (Path(folder) / OWNER_FILE).read_text().strip() or "unknown"
        except OSError:
            return "unknown"
    finally:
        os.close(fd)  # (releases the shared lock where it was taken)
    return None
