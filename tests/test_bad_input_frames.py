"""Bad input at the coordinator's ROUTER, on real sockets on 127.0.0.1: every malformed frame is
dropped, counted and logged, the peer is at most disconnected, and the coordinator's state
(tile rows, leases, workers, chunks merged) is exactly what it was. Results that do not fit a
lease (never issued, chunks outside the tile, chunks twice, bad digests) never commit."""

from __future__ import annotations

import logging
import math
import time
import zlib

import msgpack
import pytest
import zmq

from arnisd.anvil.grid import region_of
from arnisd.cluster import protocol
from arnisd.geo.projection import BlockRect
from security_helpers import HandWorker, HandshakeWatch, RunningCoordinator, dealer, recv_message

pytestmark = pytest.mark.timeout(120)
V = protocol.PROTOCOL_VERSION
DIGEST = bytes(32)
CAPS = {"os": "x", "cpu": 1, "memory_mb": 1, "slots": 1}
Z = zlib.compress(b"chunk")


def pack(message) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def bad_frames(tile: str, lease: int) -> list[tuple[str, bytes]]:
    """Frames the coordinator must refuse, aimed at a real lease where that matters."""
    def chunks(**over):
        fields = {"tile": tile, "lease": lease, "seq": 0, "rx": 0, "rz": 0,
                  "records": [[0, 0, Z]]}
        fields.update(over)
        return pack({"t": "chunks", "v": V, **fields})

    def done(**over):
        fields = {"tile": tile, "lease": lease, "count": 1, "digest": DIGEST,
                  "content_digest": DIGEST, "elapsed_s": 1.0}
        fields.update(over)
        return pack({"t": "done", "v": V, **fields})

    def register(**over):
        fields = {"worker_id": "w", "caps": dict(CAPS), "leases": []}
        fields.update(over)
        return pack({"t": "register", "v": V, **fields})

    return [
        ("empty", b""),
        ("not msgpack", b"\xc1\xc1\xc1"),
        ("truncated msgpack", pack({"t": "heartbeat", "v": V, "leases": []})[:-3]),
        ("trailing bytes", pack({"t": "heartbeat", "v": V, "leases": []}) + b"\x00"),
        ("a list", pack([1, 2, 3])),
        ("a string", pack("heartbeat")),
        ("nil", pack(None)),
        ("no type", pack({"v": V, "leases": []})),
        ("no version", pack({"t": "heartbeat", "leases": []})),
        ("version 0", pack({"t": "heartbeat", "v": 0, "leases": []})),
        ("version 2", pack({"t": "heartbeat", "v": V + 1, "leases": []})),
        ("version as text", pack({"t": "heartbeat", "v": str(V), "leases": []})),
        ("version true", pack({"t": "heartbeat", "v": True, "leases": []})),
        ("unknown type", pack({"t": "launch", "v": V})),
        ("type of the other direction", pack({"t": "lease", "v": V, "tile": tile, "lease": 1,
                                              "unit": {}, "extract": None, "elevation": None,
                                              "credit": 8})),
        ("type as bytes", pack({"t": b"heartbeat", "v": V, "leases": []})),
        ("int map key", msgpack.packb({1: 2, "t": "heartbeat", "v": V, "leases": []})),
        ("ext type", msgpack.packb({"t": "heartbeat", "v": V, "leases": msgpack.ExtType(5, b"x")})),
        ("timestamp ext", pack({"t": "heartbeat", "v": V,
                                "leases": [msgpack.Timestamp(1, 0)]})),
        ("deep nesting", b"\x81\xa1t" + b"\x91" * 5000 + b"\xc0"),
        ("declared huge bin", b"\x83\xa1t\xa6chunks\xa1v\x01\xa1x\xc6\x7f\xff\xff\xff"),
        ("declared huge array", b"\xdd\x7f\xff\xff\xff"),
        ("declared huge map", b"\xdf\x7f\xff\xff\xff"),
        ("too many records", chunks(records=[[i, 0, Z] for i in range(protocol.MAX_RECORDS_PER_FRAME + 1)])),
        ("no records", chunks(records=[])),
        ("record not a list", chunks(records=[b"abc"])),
        ("record of two", chunks(records=[[0, 0]])),
        ("record text payload", chunks(records=[[0, 0, "zlib"]])),
        ("record float x", chunks(records=[[0.0, 0, Z]])),
        ("record bool x", chunks(records=[[True, 0, Z]])),
        ("record huge x", chunks(records=[[2 ** 64 - 1, 0, Z]])),
        ("record not zlib", chunks(records=[[0, 0, b"\x00" * 64]])),
        ("record gzip", chunks(records=[[0, 0, b"\x1f\x8b\x08" + b"\x00" * 30]])),
        ("record empty", chunks(records=[[0, 0, b""]])),
        ("negative lease", chunks(lease=-1)),
        ("lease as text", chunks(lease=str(lease))),
        ("lease too big", chunks(lease=2 ** 63)),
        ("seq float", chunks(seq=1.5)),
        ("tile empty", chunks(tile="")),
        ("tile too long", chunks(tile="x" * (protocol.MAX_ID_CHARS + 1))),
        ("tile as bytes", chunks(tile=tile.encode())),
        ("rx missing", pack({"t": "chunks", "v": V, "tile": tile, "lease": lease, "seq": 0,
                             "rz": 0, "records": [[0, 0, Z]]})),
        ("digest short", done(digest=b"\x00" * 31)),
        ("digest as text", done(digest="0" * 32)),
        ("content digest long", done(content_digest=b"\x00" * 33)),
        ("count negative", done(count=-1)),
        ("elapsed NaN", done(elapsed_s=math.nan)),
        ("elapsed inf", done(elapsed_s=math.inf)),
        ("elapsed text", done(elapsed_s="1")),
        ("fail error not text", pack({"t": "fail", "v": V, "tile": tile, "lease": lease,
                                      "error": 5})),
        ("fail error huge", pack({"t": "fail", "v": V, "tile": tile, "lease": lease,
                                  "error": "e" * (protocol.MAX_ERROR_CHARS + 1)})),
        ("heartbeat leases not a list", pack({"t": "heartbeat", "v": V, "leases": {}})),
        ("heartbeat lease of three", pack({"t": "heartbeat", "v": V, "leases": [[tile, 1, 2]]})),
        ("heartbeat too many leases", pack({"t": "heartbeat", "v": V,
                                            "leases": [[tile, 1]] * (protocol.MAX_SLOTS + 1)})),
        ("register no caps", register(caps=None)),
        ("register slots 0", register(caps={**CAPS, "slots": 0})),
        ("register slots huge", register(caps={**CAPS, "slots": protocol.MAX_SLOTS + 1})),
        ("register cpu text", register(caps={**CAPS, "cpu": "2"})),
        ("register id empty", register(worker_id="")),
        ("register id too long", register(worker_id="w" * (protocol.MAX_ID_CHARS + 1))),
        ("register token not text", register(token=12345678)),
        ("register session not text", register(session=5)),
    ]


def wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def running(tmp_path):
    started = []

    def start(**overrides):
        overrides.setdefault("heartbeat_interval_s", 0.5)
        overrides.setdefault("liveness", 20)
        started.append(RunningCoordinator(tmp_path / f"c{len(started)}", **overrides))
        return started[-1]
    yield start
    for r in started:
        r.close()


def holder_with_lease(running) -> tuple[HandWorker, dict]:
    holder = HandWorker(running.endpoint, "holder")
    holder.register()
    lease = holder.expect("lease")
    holder.poll(0.3)                           # let the dispatch settle
    return holder, lease


def test_malformed_frames_are_dropped_and_change_nothing(running, caplog):
    running = running()
    coordinator = running.coordinator
    holder, lease = holder_with_lease(running)
    stranger = dealer(running.endpoint, identity=b"stranger")
    try:
        frames = bad_frames(lease["tile"], lease["lease"])
        for name, frame in frames:          # each refused by the protocol module itself
            with pytest.raises(protocol.ProtocolError):
                protocol.decode_from_worker(frame)
        before = running.state()
        errors = coordinator.protocol_errors
        caplog.set_level(logging.WARNING, logger="arnisd.cluster.coordinator")
        for name, frame in frames:
            holder.sock.send(frame)         # from the lease holder, a registered worker
            stranger.send(frame)            # and from a peer nobody knows
        holder.sock.send_multipart([b"two", b"parts"])
        stranger.send_multipart([b"a", b"b", b"c"])
        expected = errors + 2 * len(frames) + 2
        assert wait_for(lambda: coordinator.protocol_errors >= expected), \
            (coordinator.protocol_errors, expected)
        holder.poll(0.3)
        assert coordinator.protocol_errors == expected
        assert running.state() == before
        assert "dropped a bad frame" in caplog.text and "dropped a message of 3 parts" in caplog.text
        assert recv_message(stranger, 0.2) is None       # nothing said to a garbage sender
        # the coordinator still acts on good frames from the same peer
        holder.deliver(lease)
        assert wait_for(lambda: running.status()["completed"] == 1)
    finally:
        holder.close()
        stranger.close(0)


def test_oversized_frames_disconnect_only_their_sender(running):
    running = running(max_frame_bytes=64 * 1024)
    coordinator = running.coordinator
    holder, lease = holder_with_lease(running)
    big = dealer()
    watch = HandshakeWatch(big)
    try:
        big.connect(running.endpoint)
        assert watch.wait_for({zmq.EVENT_HANDSHAKE_SUCCEEDED}) is not None
        before, errors = running.state(), coordinator.protocol_errors
        big.send(b"\x00" * (64 * 1024 + 1))
        assert watch.wait_for({zmq.EVENT_DISCONNECTED}) == zmq.EVENT_DISCONNECTED
        records = [[cx, cz, zlib.compress(bytes(range(256)) * 64, 0)]
                   for cx, cz in BlockRect(*lease["unit"]["owned_blocks"]).chunks()][:8]
        frame = protocol.make("chunks", tile=lease["tile"], lease=lease["lease"], seq=0,
                              rx=records[0][0] >> 5, rz=records[0][1] >> 5, records=records)
        assert len(frame) > 64 * 1024
        big.send(frame)                       # reconnected by itself; disconnected again
        assert watch.wait_for({zmq.EVENT_DISCONNECTED}) == zmq.EVENT_DISCONNECTED
        holder.poll(0.3)
        # never delivered to the coordinator at all: not even counted as a bad frame
        assert running.state() == before and coordinator.protocol_errors == errors
        # a result frame over the limit from the lease holder: its connection drops, the frame
        # is lost; the coordinator may find it unreachable and put its lease back (not a tile
        # failure); the DEALER reconnects by itself and the worker registers again
        holder.sock.send(frame)
        assert holder.watch.wait_for({zmq.EVENT_DISCONNECTED}) == zmq.EVENT_DISCONNECTED
        assert holder.watch.wait_for({zmq.EVENT_HANDSHAKE_SUCCEEDED}) is not None   # back
        holder.poll(1.0)
        status = running.status()
        assert status["chunks_merged"] == 0 and status["completed"] == 0
        assert all(r["failures"] == 0 and r["error"] is None for r in status["tiles"])
        assert [w["worker_id"] for w in status["workers_detail"]] == ["holder"]
        # the same holder goes on, in frames under the limit
        lease = next(iter(holder.leases.values())) if holder.leases else holder.expect("lease")
        holder.deliver(lease)
        assert wait_for(lambda: running.status()["completed"] == 1)
    finally:
        watch.close()
        big.close(0)
        holder.close()


def test_results_for_leases_never_issued_change_nothing(running, caplog):
    running = running()
    coordinator = running.coordinator
    holder, lease = holder_with_lease(running)
    stranger = dealer(running.endpoint, identity=b"stranger")
    try:
        other = next(t.tile_id for t in running.tiles if t.tile_id != lease["tile"])
        owned = lease["unit"]["owned_blocks"]
        cx, cz = next(iter(BlockRect(*owned).chunks()))
        record = [[cx, cz, Z]]
        targets = [("chunk_99_99", 1), (other, 1), (other, 12345), (lease["tile"], lease["lease"] + 1000),
                   (lease["tile"], 0)]
        before, errors = running.state(), coordinator.protocol_errors
        caplog.set_level(logging.WARNING, logger="arnisd.cluster.coordinator")
        for tile, number in targets:
            holder.send("chunks", tile=tile, lease=number, seq=0, rx=cx >> 5, rz=cz >> 5,
                        records=record)
            holder.send("done", tile=tile, lease=number, count=1, digest=DIGEST,
                        content_digest=DIGEST, elapsed_s=0.1)
            holder.send("fail", tile=tile, lease=number, error="made up")
        # an unknown peer sending for the real lease is told to register, nothing more
        stranger.send(protocol.make("chunks", tile=lease["tile"], lease=lease["lease"], seq=0,
                                    rx=cx >> 5, rz=cz >> 5, records=record))
        assert recv_message(stranger)["t"] == "reregister"
        holder.poll(0.5)
        never_issued = [t for t in targets if t[1] != 1 or t[0] == "chunk_99_99"]
        assert coordinator.protocol_errors >= errors + 3 * len(never_issued)
        assert running.state() == before
        assert "never issued" in caplog.text
        assert {m["t"] for m in holder.received} <= {"welcome", "lease", "heartbeat", "cancel", "credit"}
        holder.deliver(lease)
        assert wait_for(lambda: running.status()["completed"] == 1)
    finally:
        holder.close()
        stranger.close(0)


def test_bad_results_from_the_holder_never_commit(running, caplog):
    running = running(max_failures=10)
    holder = HandWorker(running.endpoint, "holder")
    try:
        holder.register()
        caplog.set_level(logging.WARNING, logger="arnisd.cluster.coordinator")

        def fresh_lease():
            return holder.expect("lease", 10)

        def row(tile):
            return next(r for r in running.status()["tiles"] if r["tile"] == tile)

        def chunks_of(lease):
            return [(cx, cz, zlib.compress(f"{cx},{cz}".encode() * 20))
                    for cx, cz in BlockRect(*lease["unit"]["owned_blocks"]).chunks()]

        # 1. a chunk of the neighbouring tile inside an otherwise good result
        lease = fresh_lease()
        tiles = {t.tile_id: t for t in running.tiles}
        neighbour = next(t for t in running.tiles if t.tile_id != lease["tile"])
        foreign = next(iter(neighbour.owned.chunks()))
        chunks = chunks_of(lease)
        chunks[0] = (foreign[0], foreign[1], chunks[0][2])
        holder.deliver(lease, chunks=chunks)
        assert wait_for(lambda: row(lease["tile"])["failures"] == 1)
        assert "outside tile" in row(lease["tile"])["error"]
        # 2. a chunk twice in one frame (the protocol takes the frame: ownership is the
        # merger's to judge)
        lease = fresh_lease()
        chunks = chunks_of(lease)
        rx, rz = region_of(*chunks[0][:2])
        twice = [list(chunks[0]), list(chunks[0])]
        protocol.decode_from_worker(protocol.make("chunks", tile=lease["tile"],
                                                  lease=lease["lease"], seq=0, rx=rx, rz=rz,
                                                  records=twice))
        holder.send("chunks", tile=lease["tile"], lease=lease["lease"], seq=0, rx=rx, rz=rz,
                    records=twice)
        assert wait_for(lambda: row(lease["tile"])["failures"] == 1)
        assert "sent twice" in row(lease["tile"])["error"]
        # 3. a digest that does not match the chunks sent
        lease = fresh_lease()
        holder.deliver(lease, digest=b"\x01" * 32)
        assert wait_for(lambda: row(lease["tile"])["failures"] >= 1 and row(lease["tile"])["state"] != "leased")
        assert "digest" in (row(lease["tile"])["error"] or "")
        # 4. one chunk twice and another missing: the same count, a matching digest
        lease = fresh_lease()
        chunks = chunks_of(lease)
        chunks[-1] = chunks[0]
        holder.deliver(lease, chunks=chunks)
        holder.poll(1.0)
        assert row(lease["tile"])["state"] != "committed"
        # 5. fewer chunks than the tile has, with an honest count and digest
        for message in holder.poll(0.5):
            pass
        lease = fresh_lease() if not holder.leases else next(iter(holder.leases.values()))
        holder.deliver(lease, chunks=chunks_of(lease)[:-1])
        holder.poll(1.0)
        assert row(lease["tile"])["state"] != "committed"
        assert running.status()["chunks_merged"] == 0 and running.status()["completed"] == 0
        assert {t["state"] for t in running.status()["tiles"]} <= {"pending", "leased"}
        del tiles
    finally:
        holder.close()
    # real workers finish the job; the world holds no trace of the bad results
    from security_helpers import start_workers, stop_workers
    workers = start_workers(running.endpoint, 2)
    try:
        status = running.wait_finished(90)
        assert status["completed"] == len(running.tiles) and status["failed"] == 0
        assert running.world() == running.expected_world()
    finally:
        stop_workers(workers)
