"""Errors a user can fix: shown as one line, exit code 2, no traceback (unless --debug)."""


class UserError(Exception):
    """A problem with the user's input: the message names it and says how to fix it."""

    exit_code = 2
