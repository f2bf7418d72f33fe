"""Errors a user can cause, and interruptions: the CLI prints them as one line and exits
non-zero."""


class UserError(Exception):
    """Bad input or environment that the user can fix; the message is the whole story."""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP …) interrupted a command; it exits
    ``exit_code`` (128 + the signal's number, as shells report a process a signal killed)."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code
