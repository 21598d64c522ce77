"""The one exception type for problems a user can cause and fix.

Everything below the CLI raises :class:`UserError` with a message that says what is
wrong and how to fix it; the CLI prints it as one line and exits with code 2.
"""


class UserError(Exception):
    """A bad input, config, file or path: the message names the problem and the fix."""
