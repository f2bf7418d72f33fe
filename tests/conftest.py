"""What every test shares: the repository, the bundled OSM extract, running `arnisd` as a
command, a free port, and the in-process reference worlds of the extract (built once a session).

Plain names are imported with ``from conftest import ...``; the reference worlds are fixtures.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"
BUNDLED_EXTRACT = REPO_ROOT / "data" / "kouvola.osm.pbf"
BUNDLED_BBOX = "60.52,26.93,60.54,26.97"              # the extract's own bounds
BUNDLED_TENTH_BBOX = "60.525,26.94,60.535,26.955"     # about a tenth of it, for quicker jobs
BUNDLED_SPECK_BBOX = "60.53,26.95,60.532,26.954"      # a few tiles of it, for the quickest
MULTIPOLYGONS_OSM = TESTS_DIR / "data" / "multipolygons.osm"

# the caller's coordinator settings, or its service manager's, would reach the commands under test
_CALLER_SETTINGS = ("ARNISD_COORDINATOR", "ARNISD_CONFIG", "ARNISD_TOKEN", "NOTIFY_SOCKET",
                    "WATCHDOG_USEC", "WATCHDOG_PID")


_cache_home: Path | None = None


def session_cache_home() -> Path:
    """This session's stand-in for the user's cache folder (``XDG_CACHE_HOME``): what arnisd
    caches by default (OSM file indexes, elevation tiles) goes there, never to ``~/.cache``."""
    global _cache_home
    if _cache_home is None:         # imported outside a pytest session (bench): a folder of its own
        _cache_home = Path(tempfile.mkdtemp(prefix="arnisd-test-cache-"))
        atexit.register(shutil.rmtree, _cache_home, True)
    return _cache_home


@pytest.fixture(scope="session", autouse=True)
def _cache_in_a_session_folder(tmp_path_factory):
    """In-process arnisd code reads ``XDG_CACHE_HOME`` from this process's environment."""
    global _cache_home
    _cache_home = tmp_path_factory.mktemp("xdg-cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(_cache_home)
    yield _cache_home
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def _sigint_handler_kept(request):
    """Code run in the test process may ignore Ctrl-C (a slot's or worker's start-up does, in
    its own process); left so, later tests that interrupt the main thread would wait forever."""
    before = signal.getsignal(signal.SIGINT)
    yield
    if signal.getsignal(signal.SIGINT) is not before:
        signal.signal(signal.SIGINT, before)
        print(f"\n{request.node.nodeid} left SIGINT's handler changed; put back", file=sys.stderr)


def arnisd_env(extra: dict | None = None) -> dict:
    """The environment of an `arnisd` child process: this one's without the caller's coordinator
    settings, the session's cache folder as ``XDG_CACHE_HOME``, plus ``extra``, with this
    checkout first on PYTHONPATH (before ``extra``'s)."""
    env = {k: v for k, v in os.environ.items() if k not in _CALLER_SETTINGS}
    env["XDG_CACHE_HOME"] = str(session_cache_home())
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_arnisd(*args: str, timeout_s: float = 300, env: dict | None = None,
               cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    """`python -m arnisd ARGS` to completion, text output captured (``env``: extra variables)."""
    return subprocess.run([sys.executable, "-m", "arnisd", *args], capture_output=True,
                          text=True, timeout=timeout_s, env=arnisd_env(env), cwd=cwd)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ReferenceWorlds:
    """The worlds `build_world_in_process` makes of the bundled extract, one per bbox, each
    built the first time a test asks for it: what every other way of making it must equal."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._elements = None
        self._folders: dict[str, Path] = {}
        self._chunks: dict[str, dict] = {}

    def elements(self) -> list:
        if self._elements is None:
            from arnisd.osm.reader import read_osm_file
            self._elements = read_osm_file(BUNDLED_EXTRACT).elements
        return self._elements

    def folder(self, bbox: str = BUNDLED_TENTH_BBOX) -> Path:
        """The world folder of ``bbox`` (read it, never write to it)."""
        if bbox not in self._folders:
            from arnisd.geo.bbox import BBox
            from arnisd.job import JobSpec
            from arnisd.world.build import build_world_in_process
            out = self.root / f"world-{len(self._folders)}"
            build_world_in_process(JobSpec(bbox=BBox.parse(bbox), output=out), self.elements(), out)
            self._folders[bbox] = out
        return self._folders[bbox]

    def chunks(self, bbox: str = BUNDLED_TENTH_BBOX) -> dict:
        """Every chunk of the world of ``bbox``, decompressed: {(cx, cz): bytes}."""
        if bbox not in self._chunks:
            from world_chunks import read_world_chunks
            self._chunks[bbox] = read_world_chunks(self.folder(bbox))
        return self._chunks[bbox]


@pytest.fixture(scope="session")
def reference_worlds(tmp_path_factory) -> ReferenceWorlds:
    return ReferenceWorlds(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="session")
def bundled_elements(reference_worlds) -> list:
    """The bundled extract's elements, read once a session (tests must not change them)."""
    return reference_worlds.elements()
