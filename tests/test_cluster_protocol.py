"""Protocol frames: round trips, and every kind of bad frame refused with ProtocolError."""

from __future__ import annotations

import zlib

import msgpack
import pytest

from arnisd.anvil import chunk_check
from arnisd.cluster import protocol
from arnisd.cluster.protocol import ProtocolError, decode_from_coordinator, decode_from_worker, make
from arnisd.cluster.results import content_digest, group_into_frames
from arnisd.cluster.tiling import make_tiles
from arnisd.cluster.wire_names import work_unit
from arnisd.geo.bbox import BBox
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_SPECK_BBOX

DIGEST = bytes(32)
UNIT = work_unit(make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), 0.001)[0],
                 GenerationSettings(), BBox.parse(BUNDLED_SPECK_BBOX))


def test_round_trips():
    frame = make("register", worker_id="w1", caps={"os": "Linux", "cpu": 2, "memory_mb": 10, "slots": 2},
                 leases=[["chunk_0_0", 1]])
    assert decode_from_worker(frame)["worker_id"] == "w1"
    data = zlib.compress(b"\x00" * 10)
    frame = make("chunks", tile="chunk_0_0", lease=1, seq=0, rx=-1, rz=2,
                 records=[[-1, 64, data]])
    assert decode_from_worker(frame)["records"][0][2] == data
    frame = make("lease", tile="chunk_0_0", lease=2, unit=UNIT, extract=None,
                 elevation=[[15, 1, 2, b"png"]], credit=8)
    lease = decode_from_coordinator(frame)
    assert lease["lease"] == 2 and lease["unit"] == UNIT and lease["elevation"][0][3] == b"png"
    assert decode_from_coordinator(make("bench", round=3, seconds=2.5))["seconds"] == 2.5
    result = decode_from_worker(make("bench_result", round=3, host="h", error="",
                                     figures={"chunks_per_s": 700.5, "slots": 2}))
    assert result["figures"] == {"chunks_per_s": 700.5, "slots": 2}


def _lease(**over) -> bytes:
    fields = {"tile": "chunk_0_0", "lease": 2, "unit": UNIT, "extract": None, "elevation": None,
              "credit": 8}
    fields.update(over)
    return make("lease", **fields)


def _unit(**over) -> dict:
    return {**UNIT, **over}


@pytest.mark.parametrize("frame", [
    _lease(unit={"chunk_id": "chunk_0_0"}),
    _lease(unit=_unit(chunk_id="")),
    _lease(unit=_unit(bbox={"min_lat": 1.0})),
    _lease(unit=_unit(job_bbox=None)),
    _lease(unit=_unit(settings={**UNIT["settings"], "scale": 0})),
    _lease(unit=_unit(settings={**UNIT["settings"], "terrain": 1})),
    _lease(unit=_unit(settings={k: v for k, v in UNIT["settings"].items() if k != "ground_level"})),
    _lease(unit=_unit(settings={**UNIT["settings"], "terrain_params": [1]})),
    _lease(unit=_unit(owned_blocks=[0, 0, 16])),
    _lease(unit=_unit(owned_blocks=[16, 0, 0, 16])),
    _lease(elevation=[[15, 1, 2]]),
    _lease(elevation=[[15, -1, 2, b"png"]]),
    _lease(elevation=[[15, 1, 2, "png"]]),
    _lease(extract="not bytes"),
    make("lease", tile="chunk_0_0", lease=2, unit=UNIT, extract=None, credit=8),   # no elevation
], ids=range(15))
def test_bad_leases_refused(frame):
    with pytest.raises(ProtocolError):
        decode_from_coordinator(frame)


@pytest.mark.parametrize("frame,why", [
    (b"\xc1garbage", "not msgpack"),
    (msgpack.packb([1, 2, 3]), "not a map"),
    (msgpack.packb({"t": "heartbeat", "v": 99, "leases": []}), "version"),
    (msgpack.packb({"t": "heartbeat", "leases": []}), "version"),
    (msgpack.packb({"t": "launch_missiles", "v": protocol.PROTOCOL_VERSION}), "unknown message type"),
    (msgpack.packb({"t": "welcome", "v": protocol.PROTOCOL_VERSION}), "unknown message type"),
    (msgpack.packb({"t": "done", "v": protocol.PROTOCOL_VERSION, "tile": "t", "lease": 1}), "missing"),
    (make("done", tile="t", lease=1, count=1, digest=b"short", content_digest=DIGEST, elapsed_s=1.0), "digest"),
    (make("chunks", tile="t", lease=1, seq=0, rx=0, rz=0, records=[[0, 0, "not bytes"]]), "records"),
    (make("chunks", tile="t", lease=1, seq=0, rx=0, rz=0, records=[]), "records"),
    (make("chunks", tile="t", lease=-1, seq=0, rx=0, rz=0, records=[[0, 0, b""]]), "lease"),
    (make("chunks", tile="t", lease=1, seq=0, rx=0, rz=0, records=[[0, 0, b"not zlib at all"]]),
     "records"),
    (make("chunks", tile="t", lease=1, seq=0, rx=0, rz=0, records=[[2 ** 63, 0, zlib.compress(b"a")]]),
     "records"),
    (make("register", worker_id="w", caps={"os": "x", "cpu": 1, "memory_mb": 1, "slots": 0}, leases=[]), "caps"),
    (make("register", worker_id="", caps={"os": "x", "cpu": 1, "memory_mb": 1, "slots": 1}, leases=[]), "worker_id"),
    (make("heartbeat", leases=[["t", "one"]]), "leases"),
    (make("fail", tile="t", lease=1, error="x" * 5000), "error"),
    (make("register", worker_id="w", caps={"os": "x", "cpu": 1, "memory_mb": 1, "slots": 1},
          leases=[], token=5), "token"),
    (make("bench_result", round=1, host="h", figures={"chunks_per_s": "fast"}, error=""),
     "figures"),
    (make("bench_result", round=1, host="h", figures={f"f{i}": 1.0 for i in range(40)}, error=""),
     "figures"),
    (make("bench_result", round=1, host="h", figures={}), "error"),
])
def test_bad_frames_refused(frame, why):
    with pytest.raises(ProtocolError):
        decode_from_worker(frame)


def test_ownership_is_not_the_protocols_to_judge():
    # a chunk twice, or outside the frame's region: well-formed frames (the merger refuses them)
    frame = make("chunks", tile="t", lease=1, seq=0, rx=5, rz=5,
                 records=[[0, 0, zlib.compress(b"a")], [0, 0, zlib.compress(b"b")]])
    assert len(decode_from_worker(frame)["records"]) == 2


def test_size_limit():
    frame = make("fail", tile="t", lease=1, error="x")
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_from_worker(frame, max_bytes=len(frame) - 1)
    big = make("chunks", tile="t", lease=1, seq=0, rx=0, rz=0, records=[[0, 0, b"x" * 2000]])
    with pytest.raises(ProtocolError):
        decode_from_worker(big, max_bytes=1000)


def test_frames_group_by_region_and_stay_small():
    import os
    import zlib
    chunks = [(cx, cz, zlib.compress(os.urandom(3000), 0)) for cz in range(-3, 40) for cx in range(-2, 35)]
    frames = list(group_into_frames(chunks, target_bytes=64 * 1024))
    seen = []
    for rx, rz, records in frames:
        assert all((cx >> 5, cz >> 5) == (rx, rz) for cx, cz, _ in records)
        assert sum(len(r[2]) for r in records) <= 64 * 1024 or len(records) == 1
        frame = make("chunks", tile="t", lease=1, seq=0, rx=rx, rz=rz, records=records)
        assert len(frame) < protocol.MAX_RESULT_FRAME_BYTES // 8
        seen.extend((cx, cz) for cx, cz, _ in records)
    assert sorted(seen) == sorted((cx, cz) for cx, cz, _ in chunks)
    # content digest: independent of order and of compression level
    recompressed = [(cx, cz, zlib.compress(zlib.decompress(d), 9)) for cx, cz, d in reversed(chunks)]
    assert content_digest(chunks) == content_digest(recompressed)


# --- the chunk record check: a zlib header, then a first deflate block that decodes ---------

ZLIB_HEADER = b"\x78\x9c"


def _chunk_frame(data: bytes) -> bytes:
    return make("chunks", tile="t", lease=1, seq=0, rx=0, rz=0, records=[[0, 0, data]])


@pytest.mark.parametrize("deflate,why", [
    (b"\x07" + bytes(20), "block type 3 (reserved)"),
    (b"\x01\x05\x00\x05\x00" + b"x" * 5, "stored block whose length and its complement disagree"),
    (b"\x05" + bytes(64), "dynamic block whose code length codes are all zero"),
    (b"\x05\xe0\xff\xff\xff\xff\xff\xff\xff\xff", "dynamic block with an over-subscribed code set"),
])
def test_records_whose_first_deflate_block_is_garbage_are_refused(deflate, why):
    data = ZLIB_HEADER + deflate
    with pytest.raises(zlib.error):                 # the payload really is not zlib (not
        zlib.decompressobj().decompress(data)       # merely cut short) ...
    with pytest.raises(ProtocolError, match="records"):
        decode_from_worker(_chunk_frame(data))      # ... and the cheap check sees it


@pytest.mark.parametrize("payload", [
    b"", b"\x00", bytes(range(256)) * 40, b"\x0a\x00\x00" + b"chunk nbt" * 500])
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_records_of_any_zlib_payload_are_accepted(payload, level):
    data = zlib.compress(payload, level)
    assert decode_from_worker(_chunk_frame(data))["records"][0][2] == data


def test_records_with_a_bad_zlib_header_are_refused():
    good = zlib.compress(b"chunk" * 100)
    for bad in (b"\x79" + good[1:],                 # not deflate (method 9)
                b"\x78\x9d" + good[2:],             # header check bits wrong
                b"\x78\xbb" + good[2:],             # preset dictionary flag
                good[:7]):                          # too short to be a chunk
        with pytest.raises(ProtocolError, match="records"):
            decode_from_worker(_chunk_frame(bad))


def test_every_header_zlib_writes_is_accepted_and_no_other():
    written = set()
    for level in range(-1, 10):
        for wbits in range(9, 16):
            c = zlib.compressobj(level, zlib.DEFLATED, wbits)
            data = c.compress(b"chunk" * 50) + c.flush()
            written.add(data[:2])
            assert decode_from_worker(_chunk_frame(data))["records"][0][2] == data
    assert written <= chunk_check.ZLIB_HEADERS and len(chunk_check.ZLIB_HEADERS) == 32
    body = zlib.compress(b"chunk" * 50)[2:]
    for cmf in range(256):
        for flg in range(256):
            header = bytes((cmf, flg))
            if header not in chunk_check.ZLIB_HEADERS:
                with pytest.raises(ProtocolError):
                    decode_from_worker(_chunk_frame(header + body))
