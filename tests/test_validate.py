"""`arnisd validate`: a generated world is clean, and each kind of damage is named by file and
chunk; on every world here it agrees with the independent strict check
(``tests/js/check_world.js``: Node's zlib and prismarine-nbt). Needs ``npm ci --prefix
tests/js``; never skips.
"""

from __future__ import annotations

import io
import json
import shutil
import zlib
from pathlib import Path

import nbtlib
import numpy as np
import pytest

from arnisd import cli
from arnisd.anvil import region
from arnisd.anvil.manifest import MANIFEST_NAME
from arnisd.anvil.world_check import NotAWorldError, validate_world
from arnisd.cluster.job_setup import write_built_world_manifest
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from arnisd.world.build import build_world_in_process
from conftest import BUNDLED_TENTH_BBOX, run_arnisd
from independent_reader import check_world



@pytest.fixture(scope="module")
def good_world(tmp_path_factory, bundled_elements) -> Path:
    """A world of the real extract (every family), with its manifest."""
    out = tmp_path_factory.mktemp("good") / "world"
    job = JobSpec(bbox=BBox.parse(BUNDLED_TENTH_BBOX), output=out, tile_size_deg=0.004)
    build_world_in_process(job, bundled_elements, out)
    write_built_world_manifest(job, out, bundled_elements)
    return out


@pytest.fixture()
def world(good_world, tmp_path) -> Path:
    copy = tmp_path / "world"
    shutil.copytree(good_world, copy)
    return copy


def _validate_cli(world: Path, capsys, *extra: str) -> tuple[int, list[str]]:
    code = cli.main(["validate", str(world), "--processes", "2", *extra])
    return code, capsys.readouterr().out.splitlines()


def test_a_generated_world_is_clean_and_agrees_with_the_independent_check(good_world, capsys):
    strict = check_world(good_world)
    report = validate_world(good_world, processes=2)
    assert strict["problems"] == [] and report.problems == []
    assert report.chunks == strict["chunks"] > 1000
    assert report.regions == strict["regions"]
    code, lines = _validate_cli(good_world, capsys, "--json")
    as_json = json.loads("\n".join(lines))
    assert code == 0 and as_json["ok"] is True and as_json["chunks"] == strict["chunks"]


def _a_chunk(world: Path) -> tuple[Path, int, int]:
    """A region file of the world and one chunk in it."""
    path = sorted((world / "region").glob("r.*.mca"))[0]
    (cx, cz) = sorted(region.read_region_raw(path))[5]
    return path, cx, cz


def _rewrite_chunk(world: Path, spoil) -> tuple[str, int, int]:
    """Rewrite one chunk's zlib bytes with ``spoil(zlib bytes) -> zlib bytes``."""
    path, cx, cz = _a_chunk(world)
    chunks = {key: payload for key, (_, payload) in region.read_region_raw(path).items()}
    chunks[(cx, cz)] = spoil(chunks[(cx, cz)])
    rx, rz = region.region_coords_from_name(path)
    region.write_region(path.parent, rx, rz, chunks)
    return path.name, cx, cz


def _edit_nbt(change):
    def spoil(payload: bytes) -> bytes:
        tag = nbtlib.File.parse(io.BytesIO(zlib.decompress(payload)))
        change(tag)
        buffer = io.BytesIO()
        tag.write(buffer)
        return zlib.compress(buffer.getvalue())
    return spoil


def _flip_middle_byte(payload: bytes) -> bytes:
    middle = len(payload) // 2
    return payload[:middle] + bytes([payload[middle] ^ 0xFF]) + payload[middle + 1:]


CHUNK_DAMAGE = {
    "damaged chunk": (_flip_middle_byte, "zlib"),
    "wrong position": (_edit_nbt(lambda t: t.__setitem__("xPos", nbtlib.Int(-999))),
                       "position -999,"),
    "wrong data version": (_edit_nbt(lambda t: t.__setitem__("DataVersion", nbtlib.Int(3953))),
                           "DataVersion 3953, expected 4189"),
    "missing root end tag": (lambda p: zlib.compress(zlib.decompress(p)[:-1]), "NBT"),
    "trailing NBT byte": (lambda p: zlib.compress(zlib.decompress(p) + b"\x00"), "NBT ends after"),
    "no heightmaps": (_edit_nbt(lambda t: t.pop("Heightmaps")), "Heightmaps missing"),
}


@pytest.mark.parametrize("damage", sorted(CHUNK_DAMAGE))
def test_a_damaged_chunk_is_named_as_the_independent_check_names_it(world, capsys, damage):
    spoil, expected = CHUNK_DAMAGE[damage]
    name, cx, cz = _rewrite_chunk(world, spoil)
    code, lines = _validate_cli(world, capsys)
    strict = check_world(world)["problems"]
    where = f"{name} {cx},{cz}:"
    assert code == 1
    assert lines and all(line.startswith(where) for line in lines), lines
    assert any(expected in line for line in lines), lines
    assert strict and all(p.startswith(where) for p in strict), strict
    if damage in ("wrong position", "wrong data version", "no heightmaps"):
        assert sorted(lines) == sorted(strict)      # the same words, too


def test_a_truncated_region_file_is_named(world, capsys):
    path = sorted((world / "region").glob("r.*.mca"))[-1]
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 4096 - 100])
    code, lines = _validate_cli(world, capsys)
    assert code == 1
    assert lines[0] == f"{path.name}: {len(data) - 4196} bytes is not a header and whole 4 KiB sectors (truncated?)"
    assert any(line.startswith(f"{path.name} ") and "outside the file" in line for line in lines)
    assert all(line.startswith(path.name) for line in lines), lines
    assert any(p.startswith(path.name) for p in check_world(world)["problems"])


def test_a_missing_region_file_is_named_from_the_manifest(world, capsys):
    path = sorted((world / "region").glob("r.*.mca"))[0]
    count = len(region.read_region_raw(path))
    path.unlink()
    code, lines = _validate_cli(world, capsys)
    assert code == 1
    assert lines == [f"{path.name}: missing ({count} chunks of the world)"]


def test_a_missing_chunk_and_a_chunk_outside_the_area_are_named(world, capsys):
    path, cx, cz = _a_chunk(world)
    chunks = {key: payload for key, (_, payload) in region.read_region_raw(path).items()}
    del chunks[(cx, cz)]
    rx, rz = region.region_coords_from_name(path)
    region.write_region(path.parent, rx, rz, chunks)
    moved = _edit_nbt(lambda t: t.update({"xPos": nbtlib.Int(-160), "zPos": nbtlib.Int(-160)}))
    region.write_region(path.parent, -5, -5, {(-160, -160): moved(chunks[min(chunks)])})
    code, lines = _validate_cli(world, capsys)
    assert code == 1
    assert f"{path.name} {cx},{cz}: missing" in lines
    assert "r.-5.-5.mca: 1 chunks, all outside the world's area" in lines


def test_level_dat_damage_and_a_spawn_outside_the_world_are_named(world, capsys):
    level = nbtlib.load(world / "level.dat")
    level["Data"]["SpawnX"] = nbtlib.Int(-100000)
    level.save(world / "level.dat")
    code, lines = _validate_cli(world, capsys)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("level.dat: spawn -100000,") and lines[0].endswith("outside the world")
    (world / "level.dat").write_bytes(b"not gzip")
    code, lines = _validate_cli(world, capsys)
    assert code == 1 and lines[0].startswith("level.dat: unreadable")


def test_a_folder_that_is_not_a_world_exits_2(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NotAWorldError):
        validate_world(tmp_path)
    for target in (tmp_path, tmp_path / "absent"):
        proc = run_arnisd("validate", str(target), timeout_s=60)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == "" and proc.stderr.count("\n") == 1
        assert proc.stderr.startswith("arnisd: error:") and str(target) in proc.stderr


def test_an_oversized_chunk_is_read_from_its_mcc_file_and_a_missing_one_is_named(world, capsys):
    """A chunk over 255 sectors lives in ``c.X.Z.mcc``: read from there, and named when gone
    (without a manifest here: the chunk's new content would not match its tile's digest)."""
    (world / MANIFEST_NAME).unlink()
    noise = np.random.default_rng(7).integers(-2 ** 63, 2 ** 63 - 1, 140_000, dtype=np.int64)
    name, cx, cz = _rewrite_chunk(world, _edit_nbt(
        lambda t: t.__setitem__("Padding", nbtlib.LongArray(noise))))
    mcc = world / "region" / f"c.{cx}.{cz}.mcc"
    assert mcc.stat().st_size > 255 * 4096
    code, lines = _validate_cli(world, capsys)
    assert (code, lines) == (0, [])
    mcc.unlink()
    code, lines = _validate_cli(world, capsys)
    assert code == 1 and lines == [f"{name} {cx},{cz}: c.{cx}.{cz}.mcc missing or unreadable"]
