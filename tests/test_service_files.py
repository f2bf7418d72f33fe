"""The service files: the systemd template unit passes `systemd-analyze verify` (where it can
run) and has the promised settings; launchd's plist parses and says what launchd needs."""

from __future__ import annotations

import configparser
import plistlib
import shutil
import subprocess
from pathlib import Path

from conftest import REPO_ROOT
import pytest

UNIT = REPO_ROOT / "systemd" / "arnisd@.service"
PLIST = REPO_ROOT / "systemd" / "org.arnis.arnisd.plist"
INSTALLED_BINARY = "/usr/local/bin/arnisd"


def unit_sections() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True, interpolation=None, delimiters=("=",))
    parser.optionxform = str          # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def test_unit_has_the_promised_settings():
    unit = unit_sections()
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"] == f"{INSTALLED_BINARY} run --config /etc/arnisd/%i.toml"
    assert service["Restart"] == "on-failure"
    assert int(service["WatchdogSec"].rstrip("s")) >= 10
    assert service["StateDirectory"] == "arnisd"
    assert service["DynamicUser"] == "yes"
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes")):
        assert service[key] == value, key
    assert service["KillSignal"] == "SIGTERM"
    assert "forking" not in UNIT.read_text()
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_unit_passes_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        reason = "systemd-analyze is not installed (Debian package systemd)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    # verify insists that ExecStart's program exists: stand one in for the installed binary
    fake = tmp_path / "bin" / "arnisd"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    (tmp_path / UNIT.name).write_text(UNIT.read_text().replace(INSTALLED_BINARY, str(fake)))
    for role in ("coordinator", "worker"):
        proc = subprocess.run([tool, "verify", f"arnisd@{role}.service"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        output = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0 and "arnisd@" not in output:
            reason = f"systemd-analyze cannot run here: {output.splitlines()[-1] if output else proc.returncode}"
            print(f"SKIP: {reason}")
            pytest.skip(reason)
        about_us = [line for line in output.splitlines() if "arnisd@" in line]
        assert proc.returncode == 0 and about_us == [], output


def test_verify_would_catch_a_mistake(tmp_path):
    """The check above is not vacuous: a typo in the unit shows up in verify's output."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    fake = tmp_path / "arnisd"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    text = UNIT.read_text().replace(INSTALLED_BINARY, str(fake)).replace("Type=notify", "Typ=notify")
    (tmp_path / UNIT.name).write_text(text)
    proc = subprocess.run([tool, "verify", "arnisd@worker.service"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert "Typ" in proc.stdout + proc.stderr


def test_launchd_plist():
    with PLIST.open("rb") as handle:
        plist = plistlib.load(handle)
    assert plist["Label"] == "org.arnis.arnisd"
    assert PLIST.name == plist["Label"] + ".plist"
    assert plist["ProgramArguments"][:3] == [INSTALLED_BINARY, "run", "--config"]
    assert plist["ProgramArguments"][3].endswith(".toml")
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}      # restart on failure only
    assert plist["StandardOutPath"].startswith("/") and plist["StandardErrorPath"].startswith("/")
    assert "OnDemand" not in plist and "inetdCompatibility" not in plist


def test_configs_named_by_the_service_files_exist_as_examples():
    assert (REPO_ROOT / "config" / "coordinator.toml").is_file()
    assert (REPO_ROOT / "config" / "worker.toml").is_file()
    plist = plistlib.loads(PLIST.read_bytes())
    assert Path(plist["ProgramArguments"][3]).name in ("worker.toml", "coordinator.toml")
