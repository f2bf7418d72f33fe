"""Every chunk of a generated world through a strict, independent structural check
(``tests/js/check_world.js``: Node's zlib and prismarine-nbt, not arnisd's code): region framing,
NBT that ends exactly where its bytes do (the lenient chunk loader accepted a missing root end
tag that the game refuses), and the fields a 1.21.4 server needs. The checker itself is shown
to catch each kind of damage. Needs ``npm ci --prefix tests/js``; never skips.
"""

from __future__ import annotations

import io
import zlib

import nbtlib
import numpy as np
import pytest

from arnisd.anvil import chunk, region
from arnisd.world import blocks
from independent_reader import check_world


def test_a_generated_world_passes_the_strict_check(reference_worlds):
    """All families of the real extract, on a local cluster's default path and in-process."""
    out = reference_worlds.folder()
    written = sum(len(region.read_region_raw(p)) for p in (out / "region").glob("r.*.mca"))
    report = check_world(out)
    assert report["problems"] == []
    assert report["chunks"] == written > 1000


def _chunk_nbt(cx: int, cz: int, n_ids: int = 3) -> bytes:
    ids = (np.arange(4096) % n_ids).astype(np.uint16)
    ids[ids == 1] = blocks.STONE
    ids[ids == 2] = blocks.DIRT
    return chunk.encode_chunk(cx, cz, {-4: ids})


def _edit(raw: bytes, change) -> bytes:
    tag = nbtlib.File.parse(io.BytesIO(raw))
    change(tag)
    buffer = io.BytesIO()
    tag.write(buffer)
    return buffer.getvalue()


def _drop_last_data_long(tag):
    data = tag["sections"][0]["block_states"]["data"]
    tag["sections"][0]["block_states"]["data"] = nbtlib.LongArray(list(data)[:-1])


DAMAGE = {
    "missing root end tag": (lambda raw: raw[:-1], "NBT"),
    "trailing byte": (lambda raw: raw + b"\x00", "NBT ends after"),
    "short block data": (lambda raw: _edit(raw, _drop_last_data_long), "longs of data"),
    "wrong position": (lambda raw: _edit(raw, lambda t: t.__setitem__("xPos", nbtlib.Int(9))),
                       "position 9,"),
    "wrong data version": (lambda raw: _edit(raw, lambda t: t.__setitem__("DataVersion", nbtlib.Int(1))),
                           "DataVersion 1"),
    "no heightmaps": (lambda raw: _edit(raw, lambda t: t.pop("Heightmaps")), "Heightmaps missing"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_the_strict_check_catches_damage(tmp_path, damage):
    spoil, expected = DAMAGE[damage]
    good = _chunk_nbt(3, 4)
    assert _edit(good, lambda t: None) == good           # the edit path itself changes nothing
    region.write_region(tmp_path / "region", 0, 0, {(3, 4): zlib.compress(spoil(good)),
                                                     (5, 6): zlib.compress(_chunk_nbt(5, 6))})
    report = check_world(tmp_path)
    assert len(report["problems"]) >= 1, report
    assert all(p.startswith("r.0.0.mca 3,4:") for p in report["problems"]), report
    assert any(expected in p for p in report["problems"]), report
