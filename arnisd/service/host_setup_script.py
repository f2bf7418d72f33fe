"""The program ``--hosts`` runs on a host to look at it and to install arnisd there.

It is sent as text over ssh and run by the host's own Python with the standard library only
(it imports nothing of arnisd, which is not there yet). Its input on stdin: one JSON line
(``mode``: ``probe`` or ``install``, ``venv``: the install's name, to which the host's Python
version is added), then, to install, a
tar stream of wheels. It answers one JSON line, prefixed with ``ARNISD-SETUP `` so that login
banners cannot be taken for it.

An install unpacks the wheels into a fresh venv (made without pip, so the host needs no
``ensurepip`` and no network) in a temporary folder renamed into place when complete, so a
broken transfer never leaves a venv that looks installed.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path

MARKER = ".arnisd-installed"
MIN_PYTHON = (3, 11)


def cache_root() -> Path:
    if os.name == "nt" and "XDG_CACHE_HOME" not in os.environ:
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "arnisd"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "arnisd"


def venv_folder(request: dict) -> Path:
    """The install's folder, named for arnisd's code (``venv``) and for this Python's version:
    a venv is bound to the Python it was made with, so a host whose Python changed gets a
    new one instead of a venv that no longer starts."""
    tag = f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}"
    return cache_root() / f"{request['venv']}-{tag}"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def platform_facts() -> dict:
    """This Python's version and what its wheels' platform tags are made of."""
    return {"python": list(sys.version_info[:3]), "executable": sys.executable,
            "platform": sysconfig.get_platform(), "machine": platform.machine(),
            "libc": list(platform.libc_ver()), "mac": platform.mac_ver()[0]}


def probe(request: dict) -> dict:
    venv = venv_folder(request)
    return {**platform_facts(), "installed": (venv / MARKER).is_file(),
            "venv_python": str(venv_python(venv))}


def install(request: dict, stream) -> dict:
    venv = venv_folder(request)
    venv.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".install-", dir=venv.parent))
    try:
        wheels = work / "wheels"
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            if hasattr(tarfile, "data_filter"):       # 3.11.4 and later
                tar.extractall(wheels, filter="data")
            else:
                tar.extractall(wheels)
        staged = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(staged)], check=True)
        site = subprocess.run([str(venv_python(staged)), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        for wheel in sorted(wheels.glob("*.whl")):
            unpack_wheel(wheel, Path(site))
        (staged / MARKER).write_text(venv.name + "\n", encoding="utf-8")
        if venv.exists():
            shutil.rmtree(venv)
        staged.rename(venv)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return probe(request)


def unpack_wheel(wheel: Path, site: Path) -> None:
    """A wheel's files into site-packages; its ``.data/purelib|platlib`` parts there too."""
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue                 # scripts, headers: a worker needs none
                parts = parts[2:]
            target = site.joinpath(*parts)
            if name.endswith("/") or ".." in parts:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)


def main() -> None:
    stream = sys.stdin.buffer
    request = json.loads(stream.readline())
    if tuple(sys.version_info[:2]) < MIN_PYTHON:
        answer = {"error": f"Python {platform.python_version()} at {sys.executable} is too old"}
    elif request["mode"] == "install":
        answer = install(request, stream)
    else:
        answer = probe(request)
    sys.stdout.write("ARNISD-SETUP " + json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
