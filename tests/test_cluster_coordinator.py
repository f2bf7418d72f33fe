"""The coordinator against hand-driven DEALER sockets: leases, expiry, stale frames, retries,
bad input, status. Real ZeroMQ on 127.0.0.1; generation is faked in the test itself."""

from __future__ import annotations

import threading
import time
import zlib

import msgpack
import pytest
import zmq

from arnisd.cluster import protocol
from arnisd.cluster.coordinator import Coordinator
from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.extracts import NoExtracts
from arnisd.cluster.job_run import JobRun
from arnisd.cluster.merger import Merger
from arnisd.cluster.results import content_digest, group_into_frames, new_transfer_hash, update_transfer_hash
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import BlockRect
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_SPECK_BBOX
from world_chunks import read_world_chunks

pytestmark = pytest.mark.timeout(60)


def chunks_for(owned, salt=b""):
    return [(cx, cz, zlib.compress(f"{cx},{cz}".encode() * 20 + salt)) for cx, cz in BlockRect(*owned).chunks()]


class FakeWorker:
    """A worker driven by hand: each method sends or receives one protocol step."""

    def __init__(self, endpoint, worker_id, slots=1):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTING_ID, worker_id.encode())
        self.sock.connect(endpoint)
        self.worker_id, self.slots = worker_id, slots
        self.held = {}                                 # leases received and not yet delivered

    def send(self, kind, **fields):
        self.sock.send(protocol.make(kind, **fields))

    def register(self, leases=(), **extra):
        self.send("register", worker_id=self.worker_id,
                  caps={"os": "Test", "cpu": 1, "memory_mb": 1, "slots": self.slots},
                  leases=[list(x) for x in leases], **extra)
        return self.expect("welcome")

    def recv(self, timeout_s=5.0):
        if not self.sock.poll(int(timeout_s * 1000)):
            raise TimeoutError("nothing from the coordinator")
        return protocol.decode_from_coordinator(self.sock.recv())

    def expect(self, kind, timeout_s=5.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = self.recv(deadline - time.monotonic())
            if message["t"] == "heartbeat":            # answer like a live worker
                self.send("heartbeat", leases=[list(k) for k in self.held])
            if message["t"] == "lease":
                self.held[(message["tile"], message["lease"])] = message
            if message["t"] == kind:
                return message
        raise TimeoutError(kind)

    def deliver(self, lease, chunks=None, digest_override=None, content=None):
        self.held.pop((lease["tile"], lease["lease"]), None)
        chunks = chunks if chunks is not None else chunks_for(lease["unit"]["owned_blocks"])
        h = new_transfer_hash()
        for seq, (rx, rz, records) in enumerate(group_into_frames(chunks)):
            self.send("chunks", tile=lease["tile"], lease=lease["lease"], seq=seq, rx=rx, rz=rz,
                      records=records)
            update_transfer_hash(h, records)
        self.send("done", tile=lease["tile"], lease=lease["lease"], count=len(chunks),
                  digest=digest_override or h.digest(), content_digest=content or content_digest(chunks),
                  elapsed_s=0.1)

    def close(self):
        self.sock.close(0)


@pytest.fixture
def cluster(tmp_path):
    started = []

    def start(**overrides):
        tiles = make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), 0.001)
        merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False)
        config = CoordinatorConfig(heartbeat_interval_s=0.1, liveness=3, retry_backoff_s=0.05,
                                     **overrides)
        coordinator = Coordinator(config=config)
        coordinator.start_job(JobRun("job", tiles, {"bbox": BBox.parse(BUNDLED_SPECK_BBOX).as_dict(),
                                                    "scale": 1.0,
                                                    "settings": GenerationSettings().as_dict()},
                                     GenerationSettings(), merger, NoExtracts(), config))
        endpoint = coordinator.bind()
        thread = threading.Thread(target=coordinator.run, kwargs={"timeout_s": 50}, daemon=True)
        thread.start()
        started.append((coordinator, thread))
        return coordinator, endpoint, tiles
    yield start
    for coordinator, thread in started:
        coordinator.stop()
        thread.join(10)


def test_lease_deliver_commit_and_status(cluster, tmp_path):
    coordinator, endpoint, tiles = cluster()
    worker = FakeWorker(endpoint, "w1", slots=2)
    try:
        welcome = worker.register()
        assert welcome["liveness"] == 3
        status = coordinator.status_snapshot()
        for key in ("total_chunks", "completed", "in_progress", "pending", "failed"):
            assert isinstance(status[key], int)
        assert status["total_chunks"] == len(tiles)
        leases = [worker.expect("lease"), worker.expect("lease")]   # up to `slots` at once
        assert leases[0]["lease"] != leases[1]["lease"]         # fencing numbers, never reused
        assert leases[0]["unit"]["chunk_id"] == leases[0]["tile"]
        assert set(leases[0]["unit"]["settings"]) >= {"scale", "terrain", "interior", "ground_level"}
        assert leases[0]["unit"]["job_bbox"] == BBox.parse(BUNDLED_SPECK_BBOX).as_dict()
        assert "job" not in leases[0] and leases[0]["elevation"] is None     # one description
        status = coordinator.status_snapshot()
        assert status["in_progress"] == 2 and status["workers"] == {"active": 1, "idle": 0}
        done = 0
        while done < len(tiles):
            lease = leases.pop(0) if leases else worker.expect("lease")
            worker.deliver(lease)
            done += 1
        deadline = time.monotonic() + 10
        while not coordinator.status_snapshot()["finished"] and time.monotonic() < deadline:
            worker.send("heartbeat", leases=[])
            time.sleep(0.05)
        status = coordinator.status_snapshot()
        assert status["completed"] == len(tiles) and status["pending"] == 0
        assert {row["state"] for row in status["tiles"]} == {"committed"}
    finally:
        worker.close()
    expected = {}
    for t in tiles:
        for cx, cz, data in chunks_for(t.owned.as_list()):
            expected[(cx, cz)] = zlib.decompress(data)
    # the last regions are written by the assembler processes after the last commit
    deadline = time.monotonic() + 20
    while (world := read_world_chunks(tmp_path / "world")) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert world == expected


def test_silent_worker_loses_lease_and_its_late_results_are_dropped(cluster, tmp_path):
    coordinator, endpoint, tiles = cluster()
    zombie = FakeWorker(endpoint, "zombie")
    healthy = None
    try:
        zombie.register()
        stale = zombie.expect("lease")
        time.sleep(0.6)                                # > interval x liveness = 0.3 s of silence
        assert coordinator.status_snapshot()["workers"] == {"active": 0, "idle": 0}
        healthy = FakeWorker(endpoint, "healthy", slots=2)
        healthy.register()
        seen = {}
        held = None                                    # one lease kept open: the job goes on
        while stale["tile"] not in seen or held is None:
            lease = healthy.expect("lease")
            if held is None and lease["tile"] != stale["tile"]:
                held = lease
                continue
            seen[lease["tile"]] = lease["lease"]
            healthy.deliver(lease)
        assert seen[stale["tile"]] > stale["lease"]  # leased again, with a newer lease
        # the zombie wakes up: its frames are stale, it is told to register again
        zombie.deliver(stale, content=bytes(32))
        assert zombie.expect("reregister")
        zombie.register(leases=[(stale["tile"], stale["lease"])])
        cancel = zombie.expect("cancel")
        assert (cancel["tile"], cancel["lease"]) == (stale["tile"], stale["lease"])
        # a late done with different content is reported as a determinism bug
        zombie.send("done", tile=stale["tile"], lease=stale["lease"], count=1, digest=bytes(32),
                    content_digest=bytes(32), elapsed_s=1.0)
        deadline = time.monotonic() + 5
        while not coordinator.job.merger.determinism_bugs and time.monotonic() < deadline:
            healthy.send("heartbeat", leases=[[held["tile"], held["lease"]]])
            time.sleep(0.05)
        assert coordinator.job.merger.determinism_bugs
        deadline = time.monotonic() + 10
        while not coordinator.status_snapshot()["finished"] and time.monotonic() < deadline:
            for lease in list(healthy.held.values()):      # every lease it received, held included
                healthy.deliver(lease)
            try:
                healthy.deliver(healthy.expect("lease", timeout_s=0.3))
            except TimeoutError:
                pass
        assert coordinator.status_snapshot()["completed"] == len(tiles)
    finally:
        zombie.close()
        if healthy:
            healthy.close()


def test_bad_results_are_retried_then_failed(cluster):
    coordinator, endpoint, tiles = cluster(max_failures=3)
    worker = FakeWorker(endpoint, "w1")
    try:
        worker.register()
        lease = worker.expect("lease")
        target = lease["tile"]
        # 1: wrong digest
        worker.deliver(lease, digest_override=b"\x01" * 32)
        # 2: a chunk outside the tile
        lease = worker.expect("lease")
        while lease["tile"] != target:
            worker.deliver(lease)
            lease = worker.expect("lease")
        assert coordinator.job.book.records[target].attempts == 2
        outside = [(10_000, 10_000, zlib.compress(b"x"))]
        worker.send("chunks", tile=target, lease=lease["lease"], seq=0, rx=312, rz=312,
                    records=[list(outside[0])])
        assert worker.expect("cancel")["tile"] == target
        # 3: a failure frame
        lease = worker.expect("lease")
        while lease["tile"] != target:
            worker.deliver(lease)
            lease = worker.expect("lease")
        assert coordinator.job.book.records[target].attempts == 3
        worker.send("fail", tile=target, lease=lease["lease"], error="generator exploded")
        while True:
            try:
                lease = worker.expect("lease", timeout_s=1.0)
            except TimeoutError:
                break
            assert lease["tile"] != target
            worker.deliver(lease)
        status = coordinator.status_snapshot()
        assert status["failed"] == 1
        row = next(r for r in status["tiles"] if r["tile"] == target)
        assert row["state"] == "failed" and "generator exploded" in row["error"]
    finally:
        worker.close()


def test_garbage_is_dropped_and_state_unchanged(cluster):
    coordinator, endpoint, tiles = cluster()
    raw = zmq.Context.instance().socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(endpoint)
    try:
        for frame in (b"", b"\xff" * 100, msgpack.packb({"t": "register", "v": 999}),
                      msgpack.packb({"t": "done", "v": protocol.PROTOCOL_VERSION, "tile": "chunk_0_0",
                                     "lease": 1})):
            raw.send(frame)
        raw.send_multipart([b"a", b"b"])
        raw.send(protocol.make("heartbeat", leases=[]))        # unknown worker
        reply = protocol.decode_from_coordinator(raw.recv() if raw.poll(3000) else b"")
        assert reply["t"] == "reregister"
        assert coordinator.protocol_errors >= 5
        status = coordinator.status_snapshot()
        assert status["pending"] == len(tiles) and status["workers"] == {"active": 0, "idle": 0}
    finally:
        raw.close(0)


def test_token_is_checked(cluster):
    coordinator, endpoint, tiles = cluster(token="s3cret")
    worker = FakeWorker(endpoint, "intruder")
    try:
        worker.send("register", worker_id="intruder",
                    caps={"os": "x", "cpu": 1, "memory_mb": 1, "slots": 1}, leases=[], token="guess")
        assert worker.expect("reject")["reason"] == "bad token"
        assert coordinator.status_snapshot()["workers"] == {"active": 0, "idle": 0}
    finally:
        worker.close()


def test_claims_wait_between_jobs_and_are_judged_when_the_job_starts(tmp_path):
    """A worker that comes back while the coordinator has no job yet (a restarted one setting
    up) keeps its claims without streaming them; when the job starts it is asked to register
    again, and a lease that is still its own is kept and delivered."""
    tiles = make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), 0.001)
    config = CoordinatorConfig(heartbeat_interval_s=0.1, liveness=30)
    coordinator = Coordinator(config=config)
    endpoint = coordinator.bind()
    go = threading.Event()
    idle = threading.Thread(target=coordinator.idle, args=(30,), kwargs={"until": go.is_set})
    idle.start()
    worker = FakeWorker(endpoint, "w1")
    claim = (tiles[0].tile_id, 5)
    try:
        welcome = worker.register(leases=[claim], session=coordinator.session)
        assert welcome["keep"] == []                      # held: neither kept nor cancelled
        with pytest.raises(TimeoutError):
            worker.expect("cancel", timeout_s=0.5)
        go.set()
        idle.join(10)
        merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False)
        info = {"bbox": BBox.parse(BUNDLED_SPECK_BBOX).as_dict(), "scale": 1.0,
                "settings": GenerationSettings().as_dict()}
        restored = {claim[0]: {"state": "leased", "lease": 5, "attempts": 1, "holder": b"w1"}}
        coordinator.start_job(JobRun("job", tiles, info, GenerationSettings(), merger,
                                     NoExtracts(), config, restored=restored))
        runner = threading.Thread(target=coordinator.run_job, kwargs={"timeout_s": 30})
        runner.start()
        worker.expect("reregister")
        welcome = worker.register(leases=[claim], session=coordinator.session)
        assert welcome["keep"] == [list(claim)]
        lease = {"tile": claim[0], "lease": 5, "unit": {"owned_blocks": tiles[0].owned.as_list()}}
        worker.deliver(lease)
        deadline = time.monotonic() + 10
        while coordinator.job is not None and \
                coordinator.job.book.records[claim[0]].state != "committed":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        record = coordinator.job.book.records[claim[0]]
        assert (record.lease, record.attempts) == (5, 1)     # its own lease, not made again
        coordinator.stop()
        runner.join(10)
    finally:
        go.set()
        coordinator.stop()
        worker.close()
        coordinator.close()


def test_a_register_resent_in_the_same_round_changes_nothing(cluster):
    coordinator, endpoint, tiles = cluster()
    worker = FakeWorker(endpoint, "w1")
    try:
        worker.register(reg=7)
        lease = worker.expect("lease")
        welcome = worker.register(reg=7)                 # resent before the lease was seen
        assert welcome["keep"] == [[lease["tile"], lease["lease"]]]
        with pytest.raises(TimeoutError):
            worker.expect("cancel", timeout_s=0.4)
        assert coordinator.job.book.is_current(lease["tile"], lease["lease"], b"w1")
        worker.register(reg=8)                           # a new round without the claim
        cancel = worker.expect("cancel")
        assert (cancel["tile"], cancel["lease"]) == (lease["tile"], lease["lease"])
        assert not coordinator.job.book.is_current(lease["tile"], lease["lease"], b"w1")
    finally:
        worker.close()


def test_no_lease_ahead_in_the_tail_of_a_job(cluster):
    """With ``lease_ahead`` a one-slot worker holds its next tile while it computes one, from
    its first tile done on (before, the job's first tiles go one per slot to the workers as
    they register), but not once the tiles left would not fill every slot: the last tile waits
    for a free slot (on a cluster it would otherwise queue behind a busy worker while another
    one idles)."""
    coordinator, endpoint, tiles = cluster(lease_ahead=1)
    assert len(tiles) >= 4
    worker = FakeWorker(endpoint, "w1", slots=1)

    def next_lease(timeout_s):
        try:
            return worker.expect("lease", timeout_s)
        except TimeoutError:
            return None
    try:
        worker.register()
        held = [worker.expect("lease")]         # its first tile: nothing ahead yet
        assert next_lease(0.3) is None
        delivered = 0
        leased_after = {}                       # tile -> tiles delivered when its lease came
        while held:
            worker.deliver(held.pop(0))
            delivered += 1
            while len(held) < 2 and (lease := next_lease(
                    0.5 if delivered + len(held) < len(tiles) else 0.3)) is not None:
                leased_after[lease["tile"]] = delivered
                held.append(lease)
            assert len(held) <= 2               # one computing, one ahead
        assert delivered == len(tiles)
        last = max(leased_after, key=leased_after.get)
        assert leased_after[last] == len(tiles) - 1     # only once the slot was free
        # after the first tile: the next one and one ahead, then one more per tile delivered
        assert sorted(leased_after.values())[:-1] == [1, 1] + list(range(2, len(tiles) - 2))
    finally:
        worker.close()


def test_a_worker_registering_after_the_last_tile_is_told_to_shut_down(cluster):
    """One-job mode: a worker that turns up once every tile is in (while the coordinator waits
    for the others' byes) gets a shutdown, not a welcome and silence."""
    coordinator, endpoint, tiles = cluster(stop_workers_when_done=True)
    early = FakeWorker(endpoint, "early", slots=len(tiles))
    late = FakeWorker(endpoint, "late")
    try:
        early.register()
        for _ in tiles:
            early.deliver(early.expect("lease"))
        early.expect("shutdown")                 # told as soon as the last tile is in
        late.register()                          # early has not said bye: still in farewell
        assert late.expect("shutdown", timeout_s=2.0)["t"] == "shutdown"
    finally:
        early.close()
        late.close()


def test_a_done_frame_after_missing_frames_asks_for_the_result_again(cluster):
    """A done frame counting more chunks than arrived means frames were lost on the way: the
    worker is asked to register again and resend (the tile's failures stay 0), and the
    resent result commits."""
    coordinator, endpoint, tiles = cluster()
    worker = FakeWorker(endpoint, "w1")
    try:
        welcome = worker.register(reg=1)
        lease = worker.expect("lease")
        key = [lease["tile"], lease["lease"]]
        chunks = chunks_for(lease["unit"]["owned_blocks"])
        frames = list(group_into_frames(chunks, target_bytes=1))       # one chunk per frame
        assert len(frames) > 1
        h = new_transfer_hash()
        for seq, (rx, rz, records) in enumerate(frames[:-1]):          # the last one is lost
            worker.send("chunks", tile=key[0], lease=key[1], seq=seq, rx=rx, rz=rz,
                        records=records)
            update_transfer_hash(h, records)
        update_transfer_hash(h, frames[-1][2])
        worker.send("done", tile=key[0], lease=key[1], count=len(chunks), digest=h.digest(),
                    content_digest=content_digest(chunks), elapsed_s=0.1)
        worker.expect("reregister")
        record = coordinator.job.book.records[key[0]]
        assert (record.state, record.failures, record.error) == ("leased", 0, None)
        again = worker.register(reg=2, leases=[key], session=welcome["session"])
        assert again["keep"] == [key]
        worker.deliver(lease, chunks)
        deadline = time.monotonic() + 5
        while record.state != "committed" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert record.state == "committed" and record.failures == 0
    finally:
        worker.close()
