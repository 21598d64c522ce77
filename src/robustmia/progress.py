"""Progress events: how long-running work reports to whoever called it.

Nothing below the CLI prints. Long work takes an optional ``progress`` callable and
calls it with one plain dict per event; the CLI turns events into a progress bar.

Events used so far:
- ``{"event": "start", "task": str, "total": int}``: a task of ``total`` steps begins;
- ``{"event": "advance", "steps": int}``: that many steps of the current task are done;
- ``{"event": "record", ...}``: a finished unit of work with its figures (an epoch's log);
- ``{"event": "end"}``: the current task is finished.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

Progress = Callable[[dict[str, Any]], None]


def emit(progress: Optional[Progress], event: str, **data: Any) -> None:
    if progress is not None:
        progress({"event": event, **data})
