"""The README's option tables, made from the command line's own parsers so they stay true.

The README holds one block per command (and one, ``arnisd``, for the options before the
command) between ``<!-- options: NAME -->`` and ``<!-- end options -->``. ``python -m
arnisd.cli_reference README.md`` rewrites those blocks; with ``--check`` it changes nothing
and exits 1 naming the blocks that are missing or stale (the test suite runs the check).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

END_MARK = "<!-- end options -->"
_BLOCK = re.compile(r"<!-- options: (?P<name>[a-z]+) -->\n.*?" + re.escape(END_MARK), re.S)


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """``{"arnisd": the top-level parser, command name: its parser}`` in the CLI's order."""
    from arnisd.cli import build_parser
    parser = build_parser()
    out = {"arnisd": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.update(action.choices)
    return out


def options_table(parser: argparse.ArgumentParser) -> str:
    """A Markdown table of the parser's options (``--help`` aside): invocation and help."""
    formatter = parser._get_formatter()
    rows = ["| option | meaning |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        invocation = formatter._format_action_invocation(action)
        meaning = " ".join(formatter._expand_help(action).split()) if action.help else ""
        if action.required and action.option_strings:
            meaning += " (required)"
        rows.append(f"| `{invocation}` | {meaning.replace('|', '&#124;')} |")
    return "\n".join(rows)


def block(name: str, parser: argparse.ArgumentParser) -> str:
    return f"<!-- options: {name} -->\n{options_table(parser)}\n{END_MARK}"


def refresh(text: str) -> tuple[str, list[str]]:
    """``text`` with every options block made afresh, and the blocks that were missing or
    different (by command name; a block of an unknown command counts as different)."""
    parsers = command_parsers()
    stale = [name for name in parsers if f"<!-- options: {name} -->" not in text]

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in parsers:
            stale.append(name)
            return match.group(0)
        fresh = block(name, parsers[name])
        if fresh != match.group(0):
            stale.append(name)
        return fresh

    return _BLOCK.sub(replace, text), stale


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m arnisd.cli_reference",
                                description="refresh the option tables of a README")
    p.add_argument("readme", type=Path)
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = p.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    fresh, stale = refresh(text)
    if args.check:
        if stale:
            print(f"{args.readme}: option tables missing or stale: {', '.join(stale)} "
                  "(python -m arnisd.cli_reference README.md)", file=sys.stderr)
            return 1
        return 0
    missing = [name for name in stale if f"<!-- options: {name} -->" not in fresh]
    if fresh != text:
        args.readme.write_text(fresh, encoding="utf-8")
    if missing:
        print(f"no block for {', '.join(missing)}: add '<!-- options: NAME -->' and "
              f"'{END_MARK}' lines where each table goes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
