"""The one exception type for problems a user can cause and fix.

Everything below the CLI raises :class:`UserError` with a message that says what is
wrong and how to fix it; the CLI prints it as one line and exits with code 2.
"""


class UserError(Exception):
    """A bad input, config, file or path: the message names the problem and the fix."""


class RobustmiaWarning(UserWarning):
    """Something the user asked for that robustmia accepted but that probably is not what was meant
    (a setting the chosen method ignores, a size that was cut); the CLI prints it as one line."""


def warn(message: str) -> None:
    """Warn the user (``robustmia: warning: ...`` on the command line, a Python warning in the API)."""
    import warnings

    warnings.warn(message, RobustmiaWarning, stacklevel=3)
