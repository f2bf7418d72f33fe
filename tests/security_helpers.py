"""Helpers for the security, bad-input and fuzz tests: a coordinator on a thread, real worker
processes, raw sockets, handshake monitors, and waiting for a job to finish."""

from __future__ import annotations

import threading
import time
import zlib
from pathlib import Path

import zmq
from zmq.utils.monitor import recv_monitor_message

from arnisd.cluster import protocol
from arnisd.cluster.coordinator import Coordinator
from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.extracts import NoExtracts
from arnisd.cluster.job_run import JobRun
from arnisd.cluster.merger import Merger
from arnisd.cluster.slots import SPAWN
from arnisd.cluster.tiling import make_tiles
from arnisd.cluster.worker_process import run_worker_process
from arnisd.cluster.worker_config import WorkerConfig
from arnisd.geo.bbox import BBox
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_SPECK_BBOX
from fake_generators import fake_generate
from world_chunks import read_world_chunks

TILE_DEG = 0.001


class RunningCoordinator:
    """A coordinator on a thread over a speck of the bundled extract (NoExtracts), stopped by
    ``close()``."""

    def __init__(self, tmp_path: Path, extract_source=None, timeout_s: float = 120, **overrides):
        self.tiles = make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), TILE_DEG)
        self.world_dir = tmp_path / "world"
        self.merger = Merger(self.tiles, tmp_path / "state", self.world_dir, fsync=False)
        overrides.setdefault("heartbeat_interval_s", 0.2)
        overrides.setdefault("liveness", 5)
        overrides.setdefault("retry_backoff_s", 0.05)
        overrides.setdefault("stop_workers_when_done", True)     # real workers exit at the end
        self.config = CoordinatorConfig(**overrides)
        self.coordinator = Coordinator(config=self.config)
        self.coordinator.start_job(JobRun(
            "job", self.tiles, {"bbox": BBox.parse(BUNDLED_SPECK_BBOX).as_dict(), "scale": 1.0,
                                "settings": GenerationSettings().as_dict()},
            GenerationSettings(), self.merger, extract_source or NoExtracts(), self.config))
        self.endpoint = self.coordinator.bind()
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        self.error: BaseException | None = None
        self.result = None
        self.seen_workers: set[str] = set()      # worker ids registered at some point (polled)
        self.thread = threading.Thread(target=self._run, args=(timeout_s,), daemon=True)
        self.thread.start()

    def _run(self, timeout_s: float) -> None:
        try:
            self.result = self.coordinator.run(timeout_s=timeout_s)
        except BaseException as exc:          # the test looks at it
            self.error = exc

    def status(self) -> dict:
        status = self.coordinator.status_snapshot()
        self.seen_workers.update(w["worker_id"] for w in status["workers_detail"])
        return status

    def state(self) -> tuple:
        """What must not change under bad input: tile rows and the worker table."""
        status = self.status()
        return ([(r["tile"], r["state"], r.get("lease"), r["attempt"], r["failures"], r["error"])
                 for r in status["tiles"]],
                status["workers"], sorted(w["worker_id"] for w in status["workers_detail"]),
                status["chunks_merged"])

    def wait_finished(self, timeout_s: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                break
            self.status()
            time.sleep(0.05)
        assert not self.thread.is_alive(), f"job not finished in {timeout_s} s: {self.status()}"
        if self.error is not None:
            raise self.error
        return self.status()

    def expected_world(self) -> dict:
        from arnisd.geo.projection import LocalProjection
        projection = LocalProjection(BBox.parse(BUNDLED_SPECK_BBOX), 1.0)
        out = {}
        for tile in self.tiles:
            for cx, cz, data in fake_generate([], projection, tile.owned, GenerationSettings()):
                out[(cx, cz)] = zlib.decompress(data)
        return out

    def world(self) -> dict:
        return read_world_chunks(self.world_dir)

    def close(self) -> None:
        self.coordinator.stop()
        self.thread.join(15)


def start_workers(endpoint: str, count: int, prefix: str = "w", *, curve=None, token=None,
                  generator: str = "fake_generators:fake_generate", interval_s: float = 0.2,
                  liveness: int = 5) -> list:
    """``count`` real worker processes (spawn), one slot each."""
    processes = []
    for index in range(count):
        settings = WorkerConfig(coordinator=endpoint, worker_id=f"{prefix}{index}", slots=1,
                                  generator=generator, heartbeat_interval_s=interval_s,
                                  liveness=liveness, reconnect_initial_s=0.2,
                                  reconnect_max_s=1.0, token=token, curve=curve,
                                  exit_when_coordinator_lost_s=20.0)
        process = SPAWN.Process(target=run_worker_process, args=(settings,),
                                name=f"test-worker-{prefix}{index}")
        process.start()
        processes.append(process)
    return processes


def stop_workers(processes: list, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)


def dealer(endpoint: str | None = None, identity: bytes | None = None, curve=None,
           max_frame: int | None = None) -> zmq.Socket:
    """A raw DEALER (optionally a CURVE client ``(public, secret, server)``), connected."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if identity is not None:
        sock.setsockopt(zmq.ROUTING_ID, identity)
    if curve is not None:
        public, secret, server = curve
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.setsockopt(zmq.CURVE_SERVERKEY, server)
    if max_frame is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, max_frame)
    if endpoint is not None:
        sock.connect(endpoint)
    return sock


class HandshakeWatch:
    """The monitor events of a client socket (attach before connecting)."""

    WATCHED = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
               | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
               | zmq.EVENT_DISCONNECTED)

    def __init__(self, sock: zmq.Socket) -> None:
        self.sock = sock
        # only the events tests wait for: a refused client retrying fills the monitor's pipe
        self.monitor = sock.get_monitor_socket(self.WATCHED)
        self.events: list[int] = []

    def wait_for(self, wanted: set[int], timeout_s: float = 5.0) -> int | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.monitor.poll(50):
                event = recv_monitor_message(self.monitor)["event"]
                self.events.append(event)
                if event in wanted:
                    return event
        return None

    def close(self) -> None:
        # disable first: a socket closed with its monitor still on can stall the context's
        # reaper, which then keeps inproc endpoints (the ZAP handler's) bound; drain first:
        # disabling sends a last event and waits forever while the monitor's pipe is full
        while self.monitor.poll(0):
            self.monitor.recv_multipart()
        try:
            self.sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.monitor.close(0)


HANDSHAKE_FAILED = {zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL}


def register_frame(worker_id: str, token=None, slots: int = 1) -> bytes:
    fields = {"worker_id": worker_id, "caps": {"os": "Test", "cpu": 1, "memory_mb": 1,
                                                "slots": slots}, "leases": []}
    if token is not None:
        fields["token"] = token
    return protocol.make("register", **fields)


def recv_message(sock: zmq.Socket, timeout_s: float = 3.0) -> dict | None:
    if not sock.poll(int(timeout_s * 1000)):
        return None
    return protocol.decode_from_coordinator(sock.recv())


class HandWorker:
    """A worker driven by hand over a raw DEALER: register, take leases, deliver results."""

    def __init__(self, endpoint: str, worker_id: str, slots: int = 1, token=None, curve=None):
        self.sock = dealer(identity=security_routing_id(worker_id, token), curve=curve)
        self.watch = HandshakeWatch(self.sock)
        self.sock.connect(endpoint)
        self.worker_id, self.slots, self.token = worker_id, slots, token
        self.leases: dict[tuple[str, int], dict] = {}
        self.received: list[dict] = []
        self._taken = 0

    def send(self, kind: str, **fields) -> None:
        self.sock.send(protocol.make(kind, **fields))

    def register(self) -> dict:
        self.sock.send(register_frame(self.worker_id, token=self.token, slots=self.slots))
        return self.expect("welcome")

    def poll(self, timeout_s: float = 0.2) -> list[dict]:
        """Whatever arrives within ``timeout_s``; heartbeats are answered like a live worker."""
        out = []
        deadline = time.monotonic() + timeout_s
        while True:
            message = recv_message(self.sock, max(0.0, deadline - time.monotonic()))
            if message is None:
                return out
            self.received.append(message)
            out.append(message)
            if message["t"] == "heartbeat":
                self.send("heartbeat", leases=[list(k) for k in self.leases])
            elif message["t"] == "lease":
                self.leases[(message["tile"], message["lease"])] = message
            elif message["t"] == "cancel":
                self.leases.pop((message["tile"], message["lease"]), None)
            elif message["t"] == "reregister":
                self.sock.send(register_frame(self.worker_id, token=self.token, slots=self.slots))

    def expect(self, kind: str, timeout_s: float = 5.0) -> dict:
        """The next ``kind`` frame not yet taken by ``expect`` (it may have arrived earlier)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for index in range(self._taken, len(self.received)):
                if self.received[index]["t"] == kind:
                    self._taken = index + 1
                    return self.received[index]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no {kind} frame from the coordinator")
            self.poll(0.05)

    def deliver(self, lease: dict, chunks=None, digest=None, count=None) -> None:
        from arnisd.cluster.results import (content_digest, group_into_frames,
                                            new_transfer_hash, update_transfer_hash)
        from arnisd.geo.projection import BlockRect
        self.leases.pop((lease["tile"], lease["lease"]), None)
        if chunks is None:
            chunks = [(cx, cz, zlib.compress(f"{cx},{cz}".encode() * 20))
                      for cx, cz in BlockRect(*lease["unit"]["owned_blocks"]).chunks()]
        h = new_transfer_hash()
        for seq, (rx, rz, records) in enumerate(group_into_frames(chunks)):
            self.send("chunks", tile=lease["tile"], lease=lease["lease"], seq=seq, rx=rx,
                      rz=rz, records=records)
            update_transfer_hash(h, records)
        self.send("done", tile=lease["tile"], lease=lease["lease"],
                  count=len(chunks) if count is None else count, digest=digest or h.digest(),
                  content_digest=content_digest(chunks), elapsed_s=0.1)

    def close(self) -> None:
        self.watch.close()
        self.sock.close(0)


def security_routing_id(worker_id: str, token) -> bytes:
    from arnisd.cluster.security import routing_id
    return routing_id(worker_id, token)
