"""The `arnisd` command line: one subcommand per module in ``arnisd.commands``.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Errors a user can cause (``UserError`` and its subclasses) print one line on stderr and exit
non-zero; anything else is a bug and keeps its traceback. Ctrl-C, SIGTERM and SIGHUP interrupt
a command the same way (``arnisd.service.signals``): one line, exit 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from arnisd import __version__
from arnisd.errors import UserError
from arnisd.library_threads import one_library_thread
from arnisd.service.signals import interrupt_on_stop_signals

COMMAND_MODULES = ["generate", "update", "validate", "run", "submit", "cancel", "status", "preview", "keygen", "bench"]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` alone (so a command does not
    pay for importing the others: `arnisd preview` needs none of the cluster)."""
    parser = argparse.ArgumentParser(
        prog="arnisd",
        description="Generate Minecraft Java Edition worlds from OpenStreetMap data on a cluster.")
    parser.add_argument("--version", action="version", version=f"arnisd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in [only] if only in COMMAND_MODULES else COMMAND_MODULES:
        module = importlib.import_module(f"arnisd.commands.{module_name}")
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    one_library_thread()      # before any command loads numpy; child processes inherit it
    with interrupt_on_stop_signals():
        try:
            args = build_parser(_command_named(argv)).parse_args(argv)
            return int(args.handler(args) or 0)
        except UserError as exc:
            print(f"arnisd: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt as exc:
            name = getattr(exc, "signal_name", "SIGINT")
            print(f"arnisd: interrupted ({name})", file=sys.stderr)
            return getattr(exc, "exit_code", 130)


def _command_named(argv: list[str] | None) -> str | None:
    """The command the arguments name, if they start with one (options before it: none)."""
    args = sys.argv[1:] if argv is None else argv
    return args[0] if args and args[0] in COMMAND_MODULES else None


if __name__ == "__main__":
    sys.exit(main())
