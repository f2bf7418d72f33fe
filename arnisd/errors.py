"""Errors a user can cause: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """Bad input or environment that the user can fix; the message is the whole story."""

    exit_code = 2
