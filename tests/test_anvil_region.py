"""Region files: layout, round trip, oversized chunks in .mcc files, atomic writes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from arnisd.anvil import chunk, grid, region
from arnisd.geo.projection import BlockRect
from arnisd.world import blocks


def small_chunk_nbt(cx: int, cz: int) -> bytes:
    ids = np.zeros(4096, dtype=np.uint16)
    ids[:256] = blocks.BEDROCK
    ids[256 + (cx % 16)] = blocks.STONE
    return chunk.encode_chunk(cx, cz, {-4: ids})


def header(path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    data = path.read_bytes()[:8192]
    return struct.unpack(">1024I", data[:4096]), struct.unpack(">1024I", data[4096:])


def test_region_of():
    assert grid.region_of(0, 0) == (0, 0)
    assert grid.region_of(31, 31) == (0, 0)
    assert grid.region_of(32, -1) == (1, -1)
    assert grid.region_of(-32, -33) == (-1, -2)


def test_region_grid_indices_and_rects():
    # header index and back, for chunks on both sides of zero
    for cx, cz in [(0, 0), (31, 0), (0, 31), (-1, -1), (-32, 33), (1000, -1000)]:
        rx, rz = grid.region_of(cx, cz)
        index = grid.chunk_index(cx, cz)
        assert 0 <= index < 1024
        assert grid.chunk_at_index(rx, rz, index) == (cx, cz)
        x, z = grid.chunk_offset_blocks(cx, cz)
        assert grid.region_rect(rx, rz).x0 + x == cx * 16
        assert grid.region_rect(rx, rz).z0 + z == cz * 16
    assert grid.region_rect(-1, 2) == BlockRect(-512, 1024, 0, 1536)
    # a rect reaching one block into the next region touches it; ending on the edge does not
    assert grid.regions_of_rect(BlockRect(0, 0, 512, 512)) == [(0, 0)]
    assert grid.regions_of_rect(BlockRect(-16, 0, 513, 16)) == [(-1, 0), (0, 0), (1, 0)]
    assert grid.regions_of_rect(BlockRect(0, -1, 16, 512)) == [(0, -1), (0, 0)]


def test_round_trip_and_layout(tmp_path):
    coords = [(-1, -1), (-32, -32), (-5, -20), (-31, -1)]
    nbts = {c: small_chunk_nbt(*c) for c in coords}
    path = region.write_region(tmp_path, -1, -1, {c: chunk.compress_chunk(n) for c, n in nbts.items()},
                               timestamp=1_700_000_000)
    assert path == tmp_path / "r.-1.-1.mca"
    assert path.stat().st_size % 4096 == 0
    assert region.read_region(path) == nbts

    locations, stamps = header(path)
    present = [i for i, loc in enumerate(locations) if loc]
    assert present == sorted((cx & 31) + (cz & 31) * 32 for cx, cz in coords)
    offsets = [locations[i] >> 8 for i in present]
    assert offsets[0] == 2 and offsets == sorted(offsets)       # chunk index order, packed
    for i in present:
        start = (locations[i] >> 8) * 4096
        length, kind = struct.unpack(">IB", path.read_bytes()[start:start + 5])
        assert kind == 2 and length + 4 <= (locations[i] & 0xFF) * 4096
        assert stamps[i] == 1_700_000_000
    assert all(stamps[i] == 0 for i in range(1024) if i not in present)
    assert region.read_region_timestamps(path)[(-1, -1)] == 1_700_000_000


def test_deterministic_bytes(tmp_path):
    chunks = {(x, z): chunk.compress_chunk(small_chunk_nbt(x, z)) for x in range(3) for z in range(2)}
    a = region.write_region(tmp_path / "a", 0, 0, chunks)
    b = region.write_region(tmp_path / "b", 0, 0, dict(reversed(list(chunks.items()))))
    assert a.read_bytes() == b.read_bytes()


def test_chunk_outside_the_region_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        region.write_region(tmp_path, 0, 0, {(32, 0): zlib.compress(b"x")})
    assert list(tmp_path.iterdir()) == []


def test_oversized_chunk_goes_to_mcc(tmp_path):
    big_nbt = os.urandom(1_300_000)                         # incompressible, > 1 MiB
    payload = zlib.compress(big_nbt)
    assert len(payload) > 255 * 4096
    small = small_chunk_nbt(3, 4)
    chunks = {(2, 1): payload, (3, 4): chunk.compress_chunk(small)}
    path = region.write_region(tmp_path, 0, 0, chunks)

    mcc = tmp_path / "c.2.1.mcc"
    assert mcc.read_bytes() == payload
    locations, _ = header(path)
    location = locations[2 + 1 * 32]
    assert location & 0xFF == 1
    start = (location >> 8) * 4096
    assert struct.unpack(">IB", path.read_bytes()[start:start + 5]) == (1, 2 | 0x80)
    assert path.stat().st_size == 4 * 4096                # header + one sector each
    assert region.read_region(path) == {(2, 1): big_nbt, (3, 4): small}

    # Rewritten small, the chunk moves back into the region and the stale .mcc goes away.
    region.write_region(tmp_path, 0, 0, {(2, 1): chunk.compress_chunk(small)})
    assert not mcc.exists()
    assert region.read_region(path) == {(2, 1): small}


def test_exactly_255_sectors_stay_inline(tmp_path):
    payload = os.urandom(255 * 4096 - 5)
    path = region.write_region(tmp_path, 0, 0, {(0, 0): payload}, compression=region.COMPRESSION_NONE)
    assert not list(tmp_path.glob("*.mcc"))
    assert header(path)[0][0] & 0xFF == 255
    assert region.read_region(path) == {(0, 0): payload}
    path = region.write_region(tmp_path, 0, 0, {(0, 0): payload + b"x"},
                               compression=region.COMPRESSION_NONE)
    assert (tmp_path / "c.0.0.mcc").exists()
    assert region.read_region(path) == {(0, 0): payload + b"x"}


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    chunks = {(0, 0): chunk.compress_chunk(small_chunk_nbt(0, 0)), (1, 0): zlib.compress(os.urandom(1_100_000))}
    region.write_region(tmp_path, 0, 0, chunks)
    region.write_region(tmp_path, 0, 0, chunks)              # replacing an existing file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.1.0.mcc", "r.0.0.mca"]


def test_failed_write_keeps_the_old_region(tmp_path, monkeypatch):
    old = {(0, 0): chunk.compress_chunk(small_chunk_nbt(0, 0))}
    path = region.write_region(tmp_path, 0, 0, old)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(region.os, "replace", broken_replace)
    with pytest.raises(OSError):
        region.write_region(tmp_path, 0, 0, {(5, 5): chunk.compress_chunk(small_chunk_nbt(5, 5))})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.0.0.mca"]


def test_empty_region_is_just_a_header(tmp_path):
    path = region.write_region(tmp_path, 7, -3, {})
    assert path.name == "r.7.-3.mca" and path.stat().st_size == 8192
    assert region.read_region(path) == {}


def _expected_region_bytes(chunks: dict, timestamp: int, compression: int) -> bytes:
    """The region file laid out by hand, sector by sector, as the module docstring says."""
    locations, stamps, body = [0] * 1024, [0] * 1024, b""
    for index, payload in sorted(((cx & 31) + (cz & 31) * 32, p) for (cx, cz), p in chunks.items()):
        framed = struct.pack(">IB", len(payload) + 1, compression) + payload
        if len(framed) > 255 * 4096:
            framed = struct.pack(">IB", 1, compression | 0x80)
        sectors = (len(framed) + 4095) // 4096
        locations[index] = ((2 + len(body) // 4096) << 8) | sectors
        stamps[index] = timestamp
        body += framed + bytes(sectors * 4096 - len(framed))
    return struct.pack(">1024I", *locations) + struct.pack(">1024I", *stamps) + body


def test_bytes_match_the_layout_sector_by_sector(tmp_path):
    sizes = {(0, 0): 1, (5, 0): 4091, (6, 0): 4092, (31, 31): 8187, (2, 9): 700,
             (7, 7): 255 * 4096 - 5, (8, 7): 255 * 4096 - 4, (1, 30): 12_000}
    rng = np.random.default_rng(3)
    chunks = {c: rng.integers(0, 256, size=n, dtype=np.uint8).tobytes() for c, n in sizes.items()}
    path = region.write_region(tmp_path, 0, 0, chunks, timestamp=123,
                               compression=region.COMPRESSION_NONE, fsync=False)
    assert path.read_bytes() == _expected_region_bytes(chunks, 123, region.COMPRESSION_NONE)
    assert (tmp_path / "c.8.7.mcc").read_bytes() == chunks[(8, 7)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.8.7.mcc", "r.0.0.mca"]


def test_read_chunk_reads_one_chunk_as_read_region_does(tmp_path):
    coords = [(-1, -1), (-32, -32), (-5, -20)]
    nbts = {c: small_chunk_nbt(*c) for c in coords}
    path = region.write_region(tmp_path, -1, -1, {c: chunk.compress_chunk(n) for c, n in nbts.items()})
    for c in coords:
        assert region.read_chunk(path, *c) == nbts[c]
    assert region.read_chunk(path, -2, -2) is None                  # in the region, not written
    with pytest.raises(ValueError):
        region.read_chunk(path, 0, 0)                               # another region
    big_nbt = os.urandom(1_300_000)                                 # an external (.mcc) chunk
    path = region.write_region(tmp_path, 0, 0, {(2, 1): zlib.compress(big_nbt)})
    assert region.read_chunk(path, 2, 1) == big_nbt


def test_read_chunk_refuses_a_truncated_file(tmp_path):
    path = region.write_region(tmp_path, 0, 0, {(3, 4): chunk.compress_chunk(small_chunk_nbt(3, 4))})
    data = path.read_bytes()
    path.write_bytes(data[:8192 + 3])
    with pytest.raises(ValueError):
        region.read_chunk(path, 3, 4)


def _region_chunks():
    chunks = {(cx, cz): chunk.compress_chunk(small_chunk_nbt(cx, cz))
              for cx in range(0, 32, 3) for cz in range(0, 32, 5)}
    chunks[(1, 1)] = zlib.compress(os.urandom(9_000))              # a chunk of three sectors
    return chunks


def test_region_written_directly_equals_the_buffered_file(tmp_path, monkeypatch):
    """Region files go past the page cache (O_DIRECT) where possible; the bytes are the same
    as through the page cache."""
    if not getattr(os, "O_DIRECT", 0):
        pytest.skip("this platform has no O_DIRECT: regions are always written buffered")
    direct_opens = []
    real_open = os.open

    def recording_open(path, flags, *args):
        if flags & os.O_DIRECT:
            direct_opens.append(Path(path).name)
        return real_open(path, flags, *args)
    monkeypatch.setattr(region.os, "open", recording_open)
    chunks = _region_chunks()
    buffered_dir = tmp_path / "buffered"
    buffered_dir.mkdir()
    monkeypatch.setattr(region, "_DIRECT_REFUSED", {buffered_dir})
    buffered = region.write_region(buffered_dir, 0, 0, chunks).read_bytes()
    assert direct_opens == []
    direct = region.write_region(tmp_path / "direct", 0, 0, chunks)
    if region._DIRECT_REFUSED != {buffered_dir}:
        pytest.skip(f"the filesystem of {tmp_path} refuses O_DIRECT (the buffered path was used)")
    assert direct_opens == [".r.0.0.mca.%d.tmp" % os.getpid()]
    assert direct.read_bytes() == buffered
    assert region.read_region(direct) == {c: zlib.decompress(d) for c, d in chunks.items()}


@pytest.mark.parametrize("refused_at", ["open", "write"])
def test_a_filesystem_refusing_direct_io_gets_the_buffered_write(tmp_path, monkeypatch, refused_at):
    """EINVAL from open or write with O_DIRECT (a filesystem without it): the region is
    written through the page cache instead, no temporary file is left, the folder is
    remembered; other errors (a full disk) are not swallowed."""
    import errno
    monkeypatch.setattr(region.os, "O_DIRECT", 0x4000, raising=False)
    monkeypatch.setattr(region, "_DIRECT_REFUSED", set())
    real_open, real_write = os.open, os.write
    direct_fds = set()

    def refusing_open(path, flags, *args):
        if flags & 0x4000:
            if refused_at == "open":
                raise OSError(errno.EINVAL, "Invalid argument")
            fd = real_open(path, flags & ~0x4000, *args)
            direct_fds.add(fd)
            return fd
        return real_open(path, flags, *args)

    def refusing_write(fd, data):
        if fd in direct_fds:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)
    monkeypatch.setattr(region.os, "open", refusing_open)
    monkeypatch.setattr(region.os, "write", refusing_write)
    chunks = _region_chunks()
    path = region.write_region(tmp_path, 0, 0, chunks)
    assert region.read_region(path) == {c: zlib.decompress(d) for c, d in chunks.items()}
    assert region._DIRECT_REFUSED == {tmp_path}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.0.0.mca"]

    def full_disk_write(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(region, "_DIRECT_REFUSED", set())
    monkeypatch.setattr(region.os, "write", full_disk_write)
    if refused_at == "write":
        with pytest.raises(OSError) as caught:
            region.write_region(tmp_path, 0, 0, chunks)
        assert caught.value.errno == errno.ENOSPC
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.0.0.mca"]


def test_a_region_written_after_a_larger_one_has_only_zeros_between_its_chunks(tmp_path):
    """Region images reuse their thread's buffer: whatever an earlier, larger region left in
    it must not show through the next one's padding."""
    noisy = {(cx, 0): zlib.compress(os.urandom(20_000), 0) for cx in range(32)}
    region.write_region(tmp_path / "a", 0, 0, noisy, fsync=False)
    small = {(cx, cz): zlib.compress(bytes([cx, cz]) * 50) for cx in range(0, 32, 3)
             for cz in range(0, 32, 5)}
    path = region.write_region(tmp_path / "b", 0, 0, small, fsync=False)
    data = path.read_bytes()
    expected = bytearray(len(data))          # the same file laid out from scratch
    struct.pack_into(">2048I", expected, 0, *struct.unpack_from(">2048I", data, 0))
    locations = struct.unpack_from(">1024I", data, 0)
    for (cx, cz), payload in small.items():
        location = locations[grid.chunk_index(cx, cz)]
        start = (location >> 8) * region.SECTOR_BYTES
        struct.pack_into(">IB", expected, start, len(payload) + 1, region.COMPRESSION_ZLIB)
        expected[start + 5:start + 5 + len(payload)] = payload
    assert data == bytes(expected)
    assert {c: p for c, (_, p) in region.read_region_raw(path).items()} == small
