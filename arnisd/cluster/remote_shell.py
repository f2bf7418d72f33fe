"""Command lines for the shell a host's sshd runs our commands with: ``sh`` (Linux, macOS),
``cmd.exe`` (Windows' OpenSSH server by default) or PowerShell (its other usual setting).

sshd hands the one string ssh sends to that shell (``sh -c``, ``cmd.exe /c``,
``powershell -c``), so each word must be quoted for that shell and, on Windows, also for the
program's own command-line parsing (the C runtime's rules, which Python on Windows follows).
``SHELL_PROBE`` is the one command that runs unchanged in all three and says which it was.
"""

from __future__ import annotations

import shlex
import subprocess
from enum import StrEnum


class RemoteShell(StrEnum):
    POSIX = "posix"
    CMD = "cmd"
    POWERSHELL = "powershell"

    @property
    def windows(self) -> bool:
        return self is not RemoteShell.POSIX


_PROBE_MARK = "ARNISD-SHELL"
# sh: "ARNISD-SHELL %OS%" (no PSHOME); cmd.exe expands %OS% to Windows_NT and leaves $PSHOME;
# PowerShell leaves %OS% and expands $PSHOME to its install folder, one word a line. No quotes:
# nothing between ssh and the shell can change how it is split.
SHELL_PROBE = f"echo {_PROBE_MARK} %OS% $PSHOME"

# cmd.exe's metacharacters: a caret before each keeps it literal (and a caret-escaped quote
# does not switch cmd's quoting on, so a \" inside an argument cannot expose what follows)
_CMD_SPECIAL = set('()%!^"<>&|')
# PowerShell takes all of these as single quotes; each is escaped by doubling it
_PS_SINGLE_QUOTES = set("'\u2018\u2019\u201a\u201b")


def shell_from_probe(output: str) -> RemoteShell | None:
    """Which shell printed ``output`` in answer to ``SHELL_PROBE`` (None: not an answer)."""
    at = output.find(_PROBE_MARK)
    if at < 0:
        return None
    words = output[at + len(_PROBE_MARK):].split()    # PowerShell's are on lines of their own
    if words[:1] == ["Windows_NT"]:
        return RemoteShell.CMD
    if words[:1] == ["%OS%"]:
        return RemoteShell.POWERSHELL if len(words) > 1 else RemoteShell.POSIX
    return None


def _check_windows_word(word: str) -> None:
    if not word or any(c in word for c in "\0\r\n"):
        raise ValueError(f"cannot pass {word!r} through a Windows shell")


def msvcrt_quote(words: list[str]) -> str:
    """The command line a Windows program's C runtime splits back into ``words``."""
    for word in words:
        _check_windows_word(word)
    return subprocess.list2cmdline(words)


def cmd_quote(words: list[str]) -> str:
    """A ``cmd.exe /c`` command line that runs ``words`` (the program first).

    Windows' sshd runs it as ``cmd.exe /c COMMAND`` with a terminal and as ``cmd.exe /c
    "COMMAND"`` without one; the leading ``@`` keeps cmd's /c rule from taking the program's
    quotes for quotes around the whole line in the first case. The program is in real quotes
    (cmd finds the program by them); the arguments are quoted for the C runtime and every cmd
    metacharacter in them, quotes included, is escaped with a caret."""
    program, args = words[0], words[1:]
    _check_windows_word(program)
    if any(c in program for c in '"%!'):
        raise ValueError(f"cannot start {program!r} through cmd.exe")
    # cmd expands %NAME% before it reads carets; ^% keeps it on Windows but not in every
    # reimplementation (Wine's expands it), and no word we send needs a percent sign
    if any("%" in word for word in args):
        raise ValueError(f"cannot pass a % through cmd.exe: {args!r}")
    if any(c in program for c in " \t") or _CMD_SPECIAL & set(program):
        program = f'"{program}"'
    quoted = "".join("^" + c if c in _CMD_SPECIAL else c for c in msvcrt_quote(args))
    return "@" + program + (" " + quoted if quoted else "")


def powershell_quote(words: list[str]) -> str:
    """A PowerShell command that runs the native program ``words[0]`` with the rest as its
    arguments. Windows PowerShell 5.1 wraps an argument with a space in plain quotes without
    escaping anything (PowerShell 7.3+ quotes properly): the words that survive both are
    those without a double quote, and without a trailing backslash where they have a space.
    With a terminal, sshd gives the line to ``powershell -c`` unquoted, which splits it at
    blanks and joins the pieces with one space: so no tab and no two spaces in a row either."""
    for word in words:
        _check_windows_word(word)
        if ('"' in word or "\t" in word or "  " in word
                or (word.endswith("\\") and " " in word)):
            raise ValueError(f"cannot pass {word!r} to a program through PowerShell")
    quoted = ("'" + "".join(c + c if c in _PS_SINGLE_QUOTES else c for c in word) + "'"
              for word in words)
    return "& " + " ".join(quoted)


def command_line(shell: RemoteShell, words: list[str]) -> str:
    """The one string ssh sends for ``words`` to a host whose sshd uses ``shell``."""
    if shell is RemoteShell.CMD:
        return cmd_quote(words)
    if shell is RemoteShell.POWERSHELL:
        return powershell_quote(words)
    return shlex.join(words)


def python_commands(shell: RemoteShell) -> list[list[str]]:
    """The ways to start Python 3 on such a host, in the order to try them (the python.org
    installer for Windows puts ``py`` on the PATH, ``python`` only when asked to)."""
    if shell is RemoteShell.CMD:
        return [["python"], ["py", "-3"]]
    if shell is RemoteShell.POWERSHELL:      # PowerShell may be a Linux or macOS login shell
        return [["python"], ["py", "-3"], ["python3"]]
    return [["python3"]]


def not_found(shell: RemoteShell, exit_code: int, stderr: str) -> bool:
    """Whether a command failed because the shell has no such program (``stderr``: all of
    what it wrote there)."""
    if shell is RemoteShell.POSIX:
        return exit_code == 127 or "not found" in stderr
    # cmd.exe: exit 9009 "is not recognized"; PowerShell: "The term ... is not recognized"
    # over several lines ending in CommandNotFoundException; Windows' App Installer stub for
    # python: "Python was not found"
    return exit_code == 9009 or any(text in stderr for text in (
        "is not recognized", "CommandNotFoundException", "was not found"))
