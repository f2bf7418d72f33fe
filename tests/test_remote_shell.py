"""The command lines sent to a host for each shell its sshd may use: the exact strings that
reach ssh, and that each shell's parsing gives the program back its words.

There is no Windows machine here: cmd.exe's and PowerShell's parsing and the C runtime's
argument splitting are reimplemented below from their documented rules (cmd's /c quote rule,
its percent expansion and caret escapes; PowerShell's single-quoted strings and both ways it
passes arguments to programs; the C runtime's backslash and quote rules), for both ways
Windows' sshd hands a command to the shell (with a terminal, ``SHELL /c COMMAND``; without,
``cmd.exe /c "COMMAND"`` or ``powershell -c`` as one argument). The POSIX lines run in the
real ``sh``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from arnisd.cluster.remote_shell import (SHELL_PROBE, RemoteShell, cmd_quote, command_line,
                                         not_found, powershell_quote, python_commands,
                                         shell_from_probe)
from arnisd.cluster.ssh_hosts import RemoteHost, SshSettings, is_windows_openssh, windows_client
from arnisd.service.host_worker import READY
from arnisd.service.ssh_workers import host_output_line, setup_command, worker_command

WINDOWS_ENV = {"OS": "Windows_NT", "USERNAME": "tom", "PATH": r"C:\Windows\system32"}
SPACED_VENV_PYTHON = (r"C:\Users\Tom Smith (work)\AppData\Local\arnisd"
                      r"\venv-0.1.0-0123456789abcdef-cpython3.12\Scripts\python.exe")
HARD_WORDS = ["-c", "import sys;b=sys.stdin.buffer;exec(b.read(int(b.readline())))",
              r"C:\a b\c", "trailing\\", r"a\\b", 'say "hi"', 'end quote\\"', "%OS%", "50%",
              "%PATH% and %NOPE%", "a&b|c<d>e", "(x)", "^caret^", "!bang!", "semi;colon",
              "it's", "tab\tin", "ünïcödé", "two  spaces", "=x,y"]


# --- the C runtime's command-line splitting (CommandLineToArgvW and the UCRT alike) ---------

def windows_argv(line: str) -> list[str]:
    index, argv = 0, []
    # the program's name: up to the next quote if it starts with one, else to a blank
    if line.startswith('"'):
        end = line.index('"', 1)
        argv.append(line[1:end])
        index = end + 1
    else:
        while index < len(line) and line[index] not in " \t":
            index += 1
        argv.append(line[:index])
    while True:
        while index < len(line) and line[index] in " \t":
            index += 1
        if index >= len(line):
            return argv
        word, quoted = [], False
        while index < len(line):
            char = line[index]
            if char == "\\":
                count = 0
                while index < len(line) and line[index] == "\\":
                    count += 1
                    index += 1
                if index < len(line) and line[index] == '"':
                    word.append("\\" * (count // 2))
                    if count % 2:
                        word.append('"')
                        index += 1
                else:
                    word.append("\\" * count)
                continue
            if char == '"':
                if quoted and line[index + 1:index + 2] == '"':   # "" inside quotes: a quote
                    word.append('"')
                    index += 2
                    continue
                quoted = not quoted
                index += 1
                continue
            if char in " \t" and not quoted:
                break
            word.append(char)
            index += 1
        argv.append("".join(word))


# --- cmd.exe -------------------------------------------------------------------------------

def cmd_slash_c(text: str) -> str:
    """cmd's rule for the text after /c: quotes kept only when there are exactly two around
    an executable's name with blanks and no special characters; else a leading quote and the
    last quote go."""
    if text.count('"') == 2 and text.startswith('"'):
        inner = text[1:text.index('"', 1)]
        if (not set("&<>()@^|") & set(inner) and any(c in inner for c in " \t")
                and inner.lower().endswith(".exe")):
            return text
    if text.startswith('"'):
        last = text.rindex('"')
        return text[1:last] + text[last + 1:]
    return text


def cmd_percent(text: str, env: dict[str, str]) -> str:
    """Phase 1 on a command line: %NAME% of a defined NAME is replaced, anything else stays."""
    out, index = [], 0
    while index < len(text):
        end = text.find("%", index + 1) if text[index] == "%" else -1
        if end > 0 and text[index + 1:end].upper() in env:
            out.append(env[text[index + 1:end].upper()])
            index = end + 1
        else:
            out.append(text[index])
            index += 1
    return "".join(out)


def cmd_line(text: str) -> tuple[str, str]:
    """Phase 2: carets escape outside quotes, quotes toggle; an unescaped & | < > ( ) outside
    quotes would split, redirect or group the line. The leading @ goes. Returns the program
    cmd looks for and the command line it starts it with."""
    out, quoted, index = [], False, 0
    while index < len(text):
        char = text[index]
        if char == "^" and not quoted:
            out.append(text[index + 1])
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in "&|<>()" and not quoted:
            raise AssertionError(f"unescaped {char!r} in the cmd line {text!r}")
        out.append(char)
        index += 1
    line = "".join(out).lstrip(" ")
    line = line[1:] if line.startswith("@") else line
    program = line[1:line.index('"', 1)] if line.startswith('"') else line.split(" ", 1)[0]
    return program, line


def through_cmd(command: str, terminal: bool) -> list[str]:
    """The argv a program started by Windows' sshd through cmd.exe sees."""
    text = cmd_slash_c(command if terminal else f'"{command}"')
    program, line = cmd_line(cmd_percent(text, WINDOWS_ENV))
    argv = windows_argv(line)
    assert argv[0] == program
    return argv


# --- PowerShell ------------------------------------------------------------------------------

PS_QUOTES = "'\u2018\u2019\u201a\u201b"


def powershell_words(script: str) -> list[str]:
    """``& 'a' 'b' …``: the call operator with single-quoted strings (a doubled quote is one)."""
    assert script.startswith("& "), script
    words, index = [], 2
    while index < len(script):
        if script[index] == " ":
            index += 1
            continue
        assert script[index] in PS_QUOTES, f"not a quoted word at {index}: {script!r}"
        word, index = [], index + 1
        while True:
            if script[index] in PS_QUOTES:
                if index + 1 < len(script) and script[index + 1] in PS_QUOTES:
                    word.append(script[index + 1])
                    index += 2
                    continue
                index += 1
                break
            word.append(script[index])
            index += 1
        words.append("".join(word))
    return words


def powershell_native_line(words: list[str], legacy: bool) -> str:
    """How PowerShell starts a program: 5.1 (legacy) wraps words with a blank in plain
    quotes, 7.3 and later quote them as the C runtime expects."""
    if legacy:
        return " ".join(f'"{w}"' if any(c in w for c in " \t") else w for w in words if w)
    return subprocess.list2cmdline(words)


def through_powershell(command: str, terminal: bool, legacy: bool) -> list[str]:
    # with a terminal, powershell.exe -c gets the line raw, splits it and joins the pieces
    script = " ".join(windows_argv("powershell.exe " + command)[1:]) if terminal else command
    return windows_argv(powershell_native_line(powershell_words(script), legacy))


# --- the tests ------------------------------------------------------------------------------

def test_the_exact_lines_sent_for_each_shell():
    boot = "import sys;b=sys.stdin.buffer;exec(b.read(int(b.readline())))"
    assert setup_command(RemoteShell.POSIX, ["python3"]) == f"python3 -c '{boot}'"
    assert setup_command(RemoteShell.CMD, ["py", "-3"]) == (
        '@py -3 -c ^"import sys;b=sys.stdin.buffer;exec^(b.read^(int^(b.readline^(^)^)^)^)^"')
    assert setup_command(RemoteShell.POWERSHELL, ["python"]) == f"& 'python' '-c' '{boot}'"
    assert worker_command(RemoteShell.CMD, SPACED_VENV_PYTHON, "stop", "0f1e2d3c") == (
        f'@"{SPACED_VENV_PYTHON}" -m arnisd.service.host_worker stop 0f1e2d3c')
    assert worker_command(RemoteShell.POWERSHELL, SPACED_VENV_PYTHON, "run") == (
        f"& '{SPACED_VENV_PYTHON}' '-m' 'arnisd.service.host_worker' 'run'")
    assert worker_command(RemoteShell.POSIX, "/home/tom/.cache/arnisd/v-cpython3.11/bin/python",
                          "run") == ("/home/tom/.cache/arnisd/v-cpython3.11/bin/python -m "
                                     "arnisd.service.host_worker run")


def test_ssh_gets_the_command_as_one_word_after_its_options(tmp_path):
    ssh = SshSettings(config_file=tmp_path / "config", options=("Port=2222",))
    line = worker_command(RemoteShell.CMD, SPACED_VENV_PYTHON, "run")
    argv = ssh.argv(RemoteHost("tom@win", "win", None), line, tty=True,
                    forward="127.0.0.1:20001:127.0.0.1:9000")
    assert argv[0] == "ssh" and argv[1:3] == ["-F", str(tmp_path / "config")]
    assert argv[3:5] == ["-o", "Port=2222"]      # the user's option first: OpenSSH keeps it
    assert argv[-6:] == ["-R", "127.0.0.1:20001:127.0.0.1:9000", "-tt", "tom@win", "--", line]
    assert "BatchMode=yes" in argv


CMD_WORDS = [w for w in HARD_WORDS if "%" not in w]


@pytest.mark.parametrize("terminal", [True, False], ids=["tty", "no-tty"])
@pytest.mark.parametrize("words", [
    ["python", "-c", HARD_WORDS[1]], ["py", "-3", "-c", HARD_WORDS[1]],
    [SPACED_VENV_PYTHON, "-m", "arnisd.service.host_worker", "stop", "0f1e2d3c"],
    [r"C:\Users\tom\AppData\Local\arnisd\venv\Scripts\python.exe", "-m", "x", "run"],
    ["python", *CMD_WORDS]], ids=["python", "py", "spaced-venv", "plain-venv", "hard-words"])
def test_cmd_gives_the_program_its_words(words, terminal):
    assert through_cmd(cmd_quote(words), terminal) == words


def test_cmd_refuses_what_it_cannot_carry():
    for words in (["python", "a\nb"], [r"C:\100%\python.exe", "-V"], ["python", ""],
                  ["python", "%OS%"]):
        with pytest.raises(ValueError):
            cmd_quote(words)


def test_the_emulated_cmd_catches_a_naive_line():
    """The emulation is strict enough to fail the quoting cmd would break on."""
    naive = subprocess.list2cmdline(["python", "-c", 'a"b & echo pwned'])
    with pytest.raises(AssertionError):             # the \" ends cmd's quotes before the &
        through_cmd(naive, terminal=True)
    assert through_cmd(subprocess.list2cmdline(["python", "%OS%"]), True)[1] == "Windows_NT"
    # a line starting with a quote loses it to the /c rule (hence the leading @)
    spaced = subprocess.list2cmdline([r"C:\Users\Tom Smith\python.exe", "-c", "x y"])
    assert through_cmd(spaced, terminal=True)[0] == r"C:\Users\Tom"


PS_WORDS = [w for w in HARD_WORDS if '"' not in w and "\t" not in w and "  " not in w]


@pytest.mark.parametrize("legacy", [True, False], ids=["powershell-5.1", "powershell-7.3"])
@pytest.mark.parametrize("terminal", [True, False], ids=["tty", "no-tty"])
@pytest.mark.parametrize("words", [
    ["python", "-c", HARD_WORDS[1]], ["py", "-3", "-c", HARD_WORDS[1]],
    [SPACED_VENV_PYTHON, "-m", "arnisd.service.host_worker", "run"],
    ["python", *PS_WORDS, "it\u2019s"]], ids=["python", "py", "spaced-venv", "hard-words"])
def test_powershell_gives_the_program_its_words(words, terminal, legacy):
    assert through_powershell(powershell_quote(words), terminal, legacy) == words


def test_powershell_refuses_what_its_versions_pass_differently():
    for word in ('say "hi"', "two  spaces", r"C:\a b\ ".strip() + "\\", ""):
        with pytest.raises(ValueError):
            powershell_quote(["python", word])


def test_posix_lines_run_in_the_real_sh():
    words = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))",
             *HARD_WORDS, "$HOME", "`id`", "a\nb", ""]
    line = command_line(RemoteShell.POSIX, words)
    done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == words[3:]


def test_the_shell_probe_runs_in_all_three_and_says_which():
    posix = subprocess.run(["sh", "-c", SHELL_PROBE], capture_output=True, text=True, check=True)
    assert shell_from_probe(posix.stdout) is RemoteShell.POSIX
    # cmd.exe, with or without a terminal: echo prints the rest of its line as it is
    for terminal in (True, False):
        program, line = cmd_line(cmd_percent(cmd_slash_c(
            SHELL_PROBE if terminal else f'"{SHELL_PROBE}"'), WINDOWS_ENV))
        assert program == "echo"
        assert shell_from_probe(line[len("echo "):] + "\r\n") is RemoteShell.CMD
    # PowerShell: however the line reaches it (whole, or split and joined again by
    # powershell.exe -c), echo is Write-Output of three words, $PSHOME expanded, each on a line
    psh = r"C:\Windows\System32\WindowsPowerShell\v1.0"
    for script in (SHELL_PROBE, " ".join(windows_argv("powershell.exe " + SHELL_PROBE)[1:])):
        words = script.split()
        assert words[0] == "echo" and "'" not in script and '"' not in script
        printed = "".join(psh + "\r\n" if w == "$PSHOME" else w + "\r\n" for w in words[1:])
        assert shell_from_probe(printed) is RemoteShell.POWERSHELL
    assert shell_from_probe("Last login: today\n") is None


def test_python_and_not_found_per_shell():
    assert python_commands(RemoteShell.POSIX) == [["python3"]]
    assert python_commands(RemoteShell.CMD) == [["python"], ["py", "-3"]]
    assert ["python3"] in python_commands(RemoteShell.POWERSHELL)
    assert not_found(RemoteShell.POSIX, 127, "sh: 1: python3: not found")
    assert not_found(RemoteShell.CMD, 9009, "'python' is not recognized as an internal or "
                                            "external command,\r\noperable program or batch "
                                            "file.\r\n")
    assert not_found(RemoteShell.POWERSHELL, 1, (
        "& : The term 'python' is not recognized as the name of a cmdlet, function, script "
        "file, or operable program.\r\nAt line:1 char:3\r\n+ & 'python' '-c' 'import sys'\r\n"
        "+   ~~~~~~~~\r\n    + CategoryInfo          : ObjectNotFound: (python:String) [], "
        "CommandNotFoundException\r\n    + FullyQualifiedErrorId : CommandNotFoundException\r\n"))
    assert not_found(RemoteShell.CMD, 9009, "Python was not found; run without arguments to "
                                            "install from the Microsoft Store")
    assert not not_found(RemoteShell.CMD, 1, "Traceback (most recent call last):")


def test_windows_openssh_client_gets_no_connection_sharing(tmp_path):
    banner = "OpenSSH_for_Windows_9.5p1, LibreSSL 3.8.2"
    assert is_windows_openssh(banner) and not is_windows_openssh("OpenSSH_9.2p1 Debian-2")
    fake = tmp_path / "ssh-windows"        # a client that says what Windows' says to -V
    fake.write_text(f"#!/bin/sh\necho '{banner}' >&2\n")
    fake.chmod(0o755)
    host = RemoteHost("tom@win", "win", None)
    windows_argv_ = SshSettings(program=str(fake)).argv(host, "echo")
    assert "ControlMaster=no" in windows_argv_ and "ControlPath=none" in windows_argv_
    windows_client.cache_clear()
    real = SshSettings().argv(host, "echo")
    assert "ControlMaster=no" not in real and "ControlPath=none" not in real


def test_the_setup_script_names_the_venv_for_the_host_python(tmp_path):
    """A host whose Python changed does not take the venv made for the old one."""
    script = Path(__file__).resolve().parents[1] / "arnisd" / "service" / "host_setup_script.py"
    version = f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}"
    old = tmp_path / "arnisd" / "venv-1.0-abc-cpython3.10"
    old.mkdir(parents=True)
    (old / ".arnisd-installed").write_text("venv-1.0-abc-cpython3.10\n")
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def probe() -> dict:
        done = subprocess.run([sys.executable, str(script)], input='{"mode": "probe", '
                              '"venv": "venv-1.0-abc"}\n', capture_output=True, text=True,
                              env=env, check=True)
        return json.loads(done.stdout.removeprefix("ARNISD-SETUP "))

    answer = probe()
    assert not answer["installed"]
    assert f"venv-1.0-abc-{version}" in answer["venv_python"]
    (tmp_path / "arnisd" / f"venv-1.0-abc-{version}").mkdir()
    (tmp_path / "arnisd" / f"venv-1.0-abc-{version}" / ".arnisd-installed").write_text("x\n")
    assert probe()["installed"]


def test_host_output_lines_lose_terminal_sequences_and_the_token():
    """Windows' pseudo console starts with control sequences (cursor, window title) on the
    line that says the worker is ready; a terminal that echoed the settings would show the
    token."""
    first = (b"\x1b[?25l\x1b[2J\x1b[m\x1b[H\x1b]0;C:\\Windows\\system32\\cmd.exe\x07"
             b"\x1b[?25h" + READY.encode() + b"\r\n")
    assert host_output_line(first, "s3cret") == READY
    echoed = b'{"token": "s3cret", "slots": 1}\r\n'
    assert host_output_line(echoed, "s3cret") == '{"token": "[token]", "slots": 1}'
    coloured = b"\x1b[31mworker started: 1 slot(s)\x1b[0m\n"
    assert host_output_line(coloured, "s3cret") == "worker started: 1 slot(s)"


def test_windows_hosts_keep_arnisd_in_localappdata_with_the_venv_python_in_scripts(monkeypatch):
    """The setup script's and the worker's Windows branches (their os.name), on this machine's
    paths: the cache under %LOCALAPPDATA%, the venv's program Scripts/python.exe."""
    import types

    from arnisd import job
    from arnisd.service import host_setup_script
    windows_os = types.SimpleNamespace(name="nt", environ={"LOCALAPPDATA": "/c/Users/tom/Local"})
    monkeypatch.setattr(host_setup_script, "os", windows_os)
    monkeypatch.setattr(job, "os", windows_os)
    assert host_setup_script.cache_root() == Path("/c/Users/tom/Local/arnisd")
    assert job.user_cache_dir() == Path("/c/Users/tom/Local/arnisd")
    venv = host_setup_script.venv_folder({"venv": "venv-1.0-abc"})
    assert venv.parent == Path("/c/Users/tom/Local/arnisd")
    assert host_setup_script.venv_python(venv) == venv / "Scripts" / "python.exe"
