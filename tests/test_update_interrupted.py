"""An `arnisd update` killed with SIGKILL midway, at points found by watching it (its progress
lines on stderr, then its region files on disk), never by a fixed sleep:

- while tiles are being drawn: the world is the previous one, byte for byte, and validates;
- while region files are being replaced: every region file is whole (some new, some still
  old), the manifest names the tiles being redrawn, and `arnisd validate` passes.

Either way, running the same update again gives the world a full generation from the new data
makes, byte for byte (every file, temporary ones of the killed writer gone). The new data makes
every building without a height three storeys taller, so most tiles and every region change."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import osmium
import pytest

from arnisd.anvil.manifest import read_manifest
from conftest import REPO_ROOT, arnisd_env
from test_world_update import _arnisd, _copy, _files, make_worlds

pytestmark = pytest.mark.timeout(400)


def every_building_taller(src: Path, dst: Path) -> None:
    header = osmium.io.Header()         # the source's bounds: areas cut by them close the same
    with osmium.io.Reader(str(src), osmium.osm.NOTHING) as reader:
        header.add_box(reader.header().box())
    with osmium.SimpleWriter(str(dst), header=header) as writer:
        for obj in osmium.FileProcessor(str(src)):
            if obj.is_way() and "building" in obj.tags and "building:levels" not in obj.tags:
                obj = obj.replace(tags=dict(obj.tags) | {"building:levels": "3"})
            writer.add(obj)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    return make_worlds(tmp_path_factory.mktemp("update-killed"), every_building_taller)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _start_update(world: Path, new_pbf: Path) -> subprocess.Popen:
    """The update in a session of its own, so that its drawing processes can be ended too."""
    return subprocess.Popen([sys.executable, "-m", "arnisd", "update", str(world), "--osm-file",
                             str(new_pbf), "--workers", "2"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=arnisd_env(),
                            cwd=REPO_ROOT, start_new_session=True)


def _read_until(process: subprocess.Popen, prefix: str) -> list[str]:
    """Its stderr lines up to the first that starts with ``prefix``."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"the update ended before {prefix!r}: {''.join(lines)[-2000:]}")


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL to the update, then to what is left of its session (its drawing processes)."""
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.stderr.close()


def _region_stamps(world: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in (world / "region").glob("r.*.mca")}


def _validates(world: Path) -> None:
    proc = _arnisd("validate", str(world))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _finish_and_compare(world: Path, worlds: dict) -> None:
    proc = _arnisd("update", str(world), "--osm-file", str(worlds["new_pbf"]), "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _files(world) == _files(worlds["reference"])


def test_killed_while_drawing_leaves_the_previous_world(worlds, tmp_path):
    world = _copy(worlds["old"], tmp_path)
    before = _files(world)
    process = _start_update(world, worlds["new_pbf"])
    lines = _read_until(process, "drawing tiles:")
    _kill(process)
    changed = [line for line in lines if " tiles changed" in line]
    assert changed and int(changed[0].split()[0]) > 10, lines     # a long drawing to kill
    assert _files(world) == before
    _validates(world)
    _finish_and_compare(world, worlds)


def test_killed_while_replacing_region_files_validates_and_finishes(worlds, tmp_path):
    world = _copy(worlds["old"], tmp_path)
    old_files, expected = _files(world), _files(worlds["reference"])
    stamps = _region_stamps(world)
    process = _start_update(world, worlds["new_pbf"])
    _read_until(process, "replacing region files:")
    deadline = time.monotonic() + 60
    while _region_stamps(world) == stamps:           # the first region file replaced
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)
    _kill(process)
    assert read_manifest(world).pending_update is not None
    regions = [name for name in expected if name.startswith("region/")]
    to_change = [name for name in regions if old_files[name] != expected[name]]
    now = _files(world)
    new = [name for name in to_change if now.get(name) == expected[name]]
    still_old = [name for name in to_change if now.get(name) == old_files[name]]
    assert new and still_old, (new, still_old)       # a mix of whole files, nothing torn
    assert sorted(new + still_old) == sorted(to_change)
    _validates(world)
    _finish_and_compare(world, worlds)


def test_a_second_update_of_a_world_being_updated_is_refused(worlds, tmp_path):
    world = _copy(worlds["old"], tmp_path)
    first = _start_update(world, worlds["new_pbf"])
    try:
        _read_until(first, "drawing tiles:")
        second = _arnisd("update", str(world), "--osm-file", str(worlds["new_pbf"]))
        _, rest = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            _kill(first)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert f"being updated by another process (pid {first.pid})" in second.stderr
    assert first.returncode == 0, rest[-3000:]
    assert _files(world) == _files(worlds["reference"])
