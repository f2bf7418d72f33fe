"""The README lists every option of every command as the parsers define it, and the exit codes.

The option tables are made by ``arnisd.cli_reference`` from the real parsers; this fails when
an option is added, renamed or re-described without refreshing them (``python -m
arnisd.cli_reference README.md``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from arnisd.cli_reference import command_parsers, refresh

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_option_tables_match_the_parsers():
    text = README.read_text(encoding="utf-8")
    fresh, stale = refresh(text)
    assert not stale, f"stale option tables in README.md: {stale} (python -m arnisd.cli_reference README.md)"
    assert fresh == text


def test_every_option_string_of_every_command_is_in_the_readme():
    text = README.read_text(encoding="utf-8")
    for name, parser in command_parsers().items():
        block = re.search(rf"<!-- options: {name} -->\n(.*?)<!-- end options -->", text, re.S)
        assert block, f"no option table for {name}"
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in block.group(1) or f", {option}" in block.group(1), \
                        f"{name} {option} is not in its README table"


def test_the_check_notices_a_table_out_of_date(tmp_path):
    """The refresher's check fails on a README whose table misses an option, and rewriting it
    makes it pass."""
    text = README.read_text(encoding="utf-8")
    broken = tmp_path / "README.md"
    broken.write_text(text.replace("| `--allow-empty` |", "| `--allow-nothing` |"), encoding="utf-8")
    command = [sys.executable, "-m", "arnisd.cli_reference", str(broken), "--check"]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 1 and "generate" in proc.stderr, proc.stderr
    assert subprocess.run(command[:-1]).returncode == 0
    assert broken.read_text(encoding="utf-8") == text


def test_exit_codes_are_documented():
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### Exit codes"):]
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 129, 130, 143 |"):
        assert code in table, code
