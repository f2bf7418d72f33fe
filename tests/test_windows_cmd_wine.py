"""The cmd.exe command lines ``--hosts`` sends to a Windows host, run under Wine.

Wine's cmd.exe and C runtime are a second, independent implementation of Windows' (not Windows
itself: there is none here). Each line is started exactly as Windows' sshd starts it, through
CreateProcess with ``"cmd.exe" /c COMMAND`` (with a terminal) or ``"cmd.exe" /c "COMMAND"``
(without); the program it runs is built with MinGW and prints the argv its C runtime splits,
installed where Python would be (a venv under a user folder with a space and parentheses, and
``python``/``py`` on the PATH). Skips, saying why, without wine64 or MinGW (``.ci/run``
installs both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from arnisd.cluster.remote_shell import (SHELL_PROBE, RemoteShell, cmd_quote, shell_from_probe)
from arnisd.service.ssh_workers import setup_command, worker_command

pytestmark = pytest.mark.timeout(300)

# prints its argv, one word a line, as hex of the word's UTF-8
ARGV_C = r"""
#include <stdio.h>
#include <windows.h>
int wmain(int argc, wchar_t **argv) {
    for (int i = 0; i < argc; i++) {
        static char buf[16384];
        int n = WideCharToMultiByte(CP_UTF8, 0, argv[i], -1, buf, sizeof buf, NULL, NULL);
        printf("ARG:");
        for (int j = 0; j < n - 1; j++) printf("%02x", (unsigned char)buf[j]);
        printf("\n");
    }
    return 0;
}
"""
# starts the exact command line of the UTF-8 file argv[1], as sshd does, and returns its code
LAUNCH_C = r"""
#include <stdio.h>
#include <windows.h>
int wmain(int argc, wchar_t **argv) {
    static char line[65536];
    static wchar_t wide[65536];
    FILE *f = _wfopen(argv[1], L"rb");
    line[fread(line, 1, sizeof line - 1, f)] = 0;
    fclose(f);
    MultiByteToWideChar(CP_UTF8, 0, line, -1, wide, 65536);
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessW(NULL, wide, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) return 250;
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 0;
    GetExitCodeProcess(pi.hProcess, &code);
    return (int)code;
}
"""
VENV_PYTHON = (r"C:\Users\Tom Smith (work)\AppData\Local\arnisd"
               r"\venv-0.1.0-0123456789abcdef-cpython3.12\Scripts\python.exe")
CMD = r'"C:\windows\system32\cmd.exe" /c '


def _skip(reason: str):
    print(f"skipping the Wine cmd.exe tests: {reason}")
    pytest.skip(reason)


class WineCmd:
    """A Wine prefix with the argv printer installed as the host's Pythons."""

    def __init__(self, folder: Path, wine: Path, gcc: str) -> None:
        self.folder = folder
        self.wine = wine
        self.env = {**os.environ, "WINEPREFIX": str(folder / "prefix"), "WINEDEBUG": "-all",
                    "WINEPATH": r"C:\pybin"}
        for name, source in (("argv", ARGV_C), ("launch", LAUNCH_C)):
            (folder / f"{name}.c").write_text(source)
            subprocess.run([gcc, "-municode", "-O1", "-o", str(folder / f"{name}.exe"),
                            str(folder / f"{name}.c")], check=True, capture_output=True)
        booted = subprocess.run([str(wine), "wineboot", "-i"], env=self.env, capture_output=True,
                                timeout=240)
        drive = folder / "prefix" / "drive_c"
        if not (drive / "windows" / "system32" / "cmd.exe").exists():
            _skip(f"wineboot made no prefix: {booted.stderr.decode(errors='replace')[-200:]}")
        venv = drive.joinpath(*VENV_PYTHON[3:].split("\\"))
        venv.parent.mkdir(parents=True)
        shutil.copy(folder / "argv.exe", venv)
        (drive / "pybin").mkdir()
        for name in ("python.exe", "py.exe"):
            shutil.copy(folder / "argv.exe", drive / "pybin" / name)

    def run(self, line: str) -> str:
        """What the exact command ``line`` prints, started by CreateProcess."""
        (self.folder / "line.txt").write_text(line, encoding="utf-8")
        windows_path = "Z:" + str(self.folder / "line.txt").replace("/", "\\")
        done = subprocess.run([str(self.wine), str(self.folder / "launch.exe"), windows_path],
                              env=self.env, capture_output=True, timeout=60)
        return done.stdout.decode("utf-8", errors="replace")

    def argv(self, line: str) -> list[str]:
        return [bytes.fromhex(row[4:].strip()).decode() for row in self.run(line).splitlines()
                if row.startswith("ARG:")]

    def close(self) -> None:
        subprocess.run([str(self.wine.with_name("wineserver")), "-k"], env=self.env,
                       capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def wine_cmd(tmp_path_factory):
    wine = next((Path(p) for p in (shutil.which("wine64"), shutil.which("wine"),
                                   "/usr/lib/wine/wine64") if p and Path(p).exists()), None)
    gcc = shutil.which("x86_64-w64-mingw32-gcc")
    if wine is None:
        _skip("no wine64 (Debian's wine64)")
    if gcc is None:
        _skip("no x86_64-w64-mingw32-gcc (Debian's gcc-mingw-w64-x86-64-win32)")
    lab = WineCmd(tmp_path_factory.mktemp("wine"), wine, gcc)
    yield lab
    lab.close()


HARD_WORDS = ["import sys;b=sys.stdin.buffer;exec(b.read(int(b.readline())))", r"C:\a b\c",
              "trailing\\", r"a\\b", 'say "hi"', 'end quote\\"', "a&b|c<d>e", "(x)",
              "^caret^", "!bang!", "semi;colon", "it's", "tab\tin", "ünïcödé", "two  spaces"]


@pytest.mark.parametrize("terminal", [True, False], ids=["tty", "no-tty"])
def test_the_lines_sent_to_cmd_give_each_program_its_words(wine_cmd, terminal):
    boot = "import sys;b=sys.stdin.buffer;exec(b.read(int(b.readline())))"
    cases = [(setup_command(RemoteShell.CMD, ["python"]), ["python", "-c", boot]),
             (setup_command(RemoteShell.CMD, ["py", "-3"]), ["py", "-3", "-c", boot]),
             (worker_command(RemoteShell.CMD, VENV_PYTHON, "run"),
              [VENV_PYTHON, "-m", "arnisd.service.host_worker", "run"]),
             (worker_command(RemoteShell.CMD, VENV_PYTHON, "stop", "0f1e2d3c"),
              [VENV_PYTHON, "-m", "arnisd.service.host_worker", "stop", "0f1e2d3c"]),
             (cmd_quote(["python", *HARD_WORDS]), ["python", *HARD_WORDS])]
    for command, words in cases:
        line = CMD + (command if terminal else f'"{command}"')
        assert wine_cmd.argv(line) == words, line


def test_the_shell_probe_says_cmd(wine_cmd):
    for line in (CMD + SHELL_PROBE, CMD + f'"{SHELL_PROBE}"'):
        assert shell_from_probe(wine_cmd.run(line)) is RemoteShell.CMD


def test_a_naive_line_breaks_under_cmd(wine_cmd):
    """The check is sharp: plain C-runtime quoting, as a POSIX-minded caller would send it,
    does not survive cmd.exe (its & ends the command)."""
    words = ["python", "-c", 'a"b & echo pwned']
    assert wine_cmd.argv(CMD + subprocess.list2cmdline(words)) != words
