"""Fuzzing the coordinator's ROUTER on 127.0.0.1, then a real job on the same coordinator.

Thousands of random and mutated frames come from raw DEALERs (some registered as workers, so
the frames reach the lease-holding paths too, some unknown), as single and multipart messages:
random bytes, byte-level mutations of valid frames (flips, cuts, splices), and structural ones
(fields dropped, added, or given values of random types; unknown types and versions). Raw TCP
connections send garbage ZMTP: random bytes, truncated or foreign greetings, bad mechanisms,
broken handshakes, frames claiming huge sizes, and a few connections that stall half-way. The
coordinator must keep running, keep a consistent tile table, and afterwards complete the job
with real worker processes, the world equal to the expected one. The numbers survived are
printed (``-s``). ``ARNISD_FUZZ_FRAMES`` / ``ARNISD_FUZZ_TCP`` / ``ARNISD_FUZZ_SEED`` change the
run; the defaults keep it under a minute on two cores.
"""

from __future__ import annotations

import math
import os
import random
import socket
import struct
import time
import zlib

import msgpack
import pytest
import zmq

from arnisd.cluster import protocol
from arnisd.geo.projection import BlockRect
from security_helpers import RunningCoordinator, start_workers, stop_workers

pytestmark = pytest.mark.timeout(240)

FRAMES = int(os.environ.get("ARNISD_FUZZ_FRAMES", "20000"))
TCP_SESSIONS = int(os.environ.get("ARNISD_FUZZ_TCP", "2000"))
SEED = int(os.environ.get("ARNISD_FUZZ_SEED", "0")) or random.SystemRandom().randrange(1, 2 ** 31)
KINDS = ["register", "heartbeat", "chunks", "done", "fail", "bye", "welcome", "lease", "credit",
         "cancel", "reject", "reregister", "shutdown", "", "x" * 300]


# --- random values and frames ------------------------------------------------------------------

def random_value(rng: random.Random, depth: int = 0):
    roll = rng.randrange(12 if depth < 3 else 8)
    if roll == 0:
        return None
    if roll == 1:
        return rng.random() < 0.5
    if roll == 2:
        return rng.choice([0, 1, -1, 2 ** 31, -(2 ** 31), 2 ** 62, 2 ** 63 - 1, -(2 ** 63),
                           2 ** 64 - 1, rng.randrange(-1000, 1000)])
    if roll == 3:
        return rng.choice([0.0, -0.0, 1.5, math.nan, math.inf, -math.inf, 1e300, rng.random()])
    if roll == 4:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0xD7FF)]))
                       for _ in range(rng.choice([0, 1, 8, 40, 200])))
    if roll == 5:
        return rng.randbytes(rng.choice([0, 1, 31, 32, 33, 100]))
    if roll == 6:
        return zlib.compress(rng.randbytes(rng.randrange(64)))
    if roll == 7:
        if rng.random() < 0.2:
            return msgpack.Timestamp(rng.randrange(2 ** 32), 0)
        return msgpack.ExtType(rng.randrange(128), rng.randbytes(rng.randrange(8)))
    if roll in (8, 9):
        return [random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 3, 5]))]
    return {rng.choice(["t", "v", "tile", "lease", "records", "leases", "caps", "worker_id",
                        "token", "digest", "x"]) if rng.random() < 0.8 else random_value(rng, 9):
            random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 4]))}


def pack(message) -> bytes | None:
    try:
        return msgpack.packb(message, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return None


class Corpus:
    """Valid frames about the job's real tiles and leases (never a complete, consistent result)."""

    def __init__(self, rng: random.Random, tiles, leases) -> None:
        self.rng = rng
        self.tiles = tiles
        self.leases = leases            # [(tile, lease)] seen on the status page

    def message(self) -> dict:
        rng = self.rng
        tile = rng.choice(self.tiles)
        tile_id, lease = rng.choice(self.leases) if self.leases and rng.random() < 0.7 else \
            (tile.tile_id, rng.randrange(0, 4))
        kind = rng.choice(["register", "heartbeat", "chunks", "chunks", "done", "fail", "bye"])
        if kind == "register":
            fields = {"worker_id": f"fuzz{rng.randrange(5)}",
                      "caps": {"os": "Fuzz", "cpu": rng.randrange(64), "memory_mb": 1,
                               "slots": rng.randrange(1, 4)},
                      "leases": [[tile_id, lease]] if rng.random() < 0.5 else []}
            if rng.random() < 0.3:
                fields["session"] = "s" * rng.randrange(1, 40)
        elif kind == "heartbeat":
            fields = {"leases": [[tile_id, lease]] * rng.randrange(3)}
        elif kind == "chunks":
            chunks = list(BlockRect(*tile.owned.as_list()).chunks())
            picked = rng.sample(chunks, min(len(chunks), rng.randrange(1, 4)))
            fields = {"tile": tile_id, "lease": lease, "seq": rng.randrange(3),
                      "rx": picked[0][0] >> 5, "rz": picked[0][1] >> 5,
                      "records": [[cx, cz, zlib.compress(rng.randbytes(rng.randrange(1, 64)))]
                                  for cx, cz in picked]}
        elif kind == "done":
            fields = {"tile": tile_id, "lease": lease, "count": rng.randrange(100),
                      "digest": rng.randbytes(32), "content_digest": rng.randbytes(32),
                      "elapsed_s": rng.random()}
        elif kind == "fail":
            fields = {"tile": tile_id, "lease": lease, "error": "fuzz"}
        else:
            fields = {}
        return {"t": kind, "v": protocol.PROTOCOL_VERSION, **fields}


def mutate_structure(rng: random.Random, message: dict) -> dict:
    message = dict(message)
    for _ in range(rng.randrange(1, 4)):
        roll = rng.randrange(6)
        keys = list(message)
        if roll == 0 and keys:
            del message[rng.choice(keys)]
        elif roll == 1 and keys:
            message[rng.choice(keys)] = random_value(rng)
        elif roll == 2:
            message[rng.choice(["extra", "token", "session", "x" * 50])] = random_value(rng)
        elif roll == 3:
            message["t"] = rng.choice(KINDS + [random_value(rng)])
        elif roll == 4:
            message["v"] = rng.choice([0, 2, -1, "1", 1.0, True, None, 2 ** 40])
        elif roll == 5 and isinstance(message.get("records"), list) and message["records"]:
            record = rng.choice(message["records"])
            record = list(record) if isinstance(record, list) and len(record) == 3 else [0, 0, b""]
            record[rng.randrange(3)] = random_value(rng)
            message["records"] = message["records"] + [record]
    return message


def mutate_bytes(rng: random.Random, frame: bytes, other: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randrange(1, 5)):
        roll = rng.randrange(6)
        if roll == 0 and data:
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
        elif roll == 1 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif roll == 2 and data:
            start = rng.randrange(len(data))
            del data[start:start + rng.randrange(1, 16)]
        elif roll == 3:
            position = rng.randrange(len(data) + 1)
            data[position:position] = rng.randbytes(rng.randrange(1, 16))
        elif roll == 4:
            data = data[:rng.randrange(len(data) + 1)]
        elif roll == 5:
            data = data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]
    return bytes(data)


def fuzz_frame(rng: random.Random, corpus: Corpus) -> bytes:
    roll = rng.randrange(10)
    if roll == 0:
        return rng.randbytes(rng.choice([0, 1, 2, 5, 64, 1000, 20000]))
    if roll == 1:
        return pack(random_value(rng)) or b"\xc1"
    if roll in (2, 3, 4):
        return pack(mutate_structure(rng, corpus.message())) or b"\xc1"
    if roll in (5, 6, 7):
        return mutate_bytes(rng, pack(corpus.message()), pack(corpus.message()))
    return pack(corpus.message())       # valid, aimed at real tiles and leases


# --- raw TCP -----------------------------------------------------------------------------------

def zmtp_greeting(rng: random.Random, mechanism: bytes = b"NULL", as_server: int = 0,
                  major: int = 3, minor: int = 0) -> bytes:
    return (b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([major, minor]) + mechanism.ljust(20, b"\x00")
            + bytes([as_server]) + b"\x00" * 31)


def zmtp_command(name: bytes, body: bytes) -> bytes:
    payload = bytes([len(name)]) + name + body
    if len(payload) < 256:
        return bytes([0x04, len(payload)]) + payload
    return bytes([0x06]) + struct.pack(">Q", len(payload)) + payload


def zmtp_property(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def ready(socket_type: bytes = b"DEALER", identity: bytes | None = None) -> bytes:
    body = zmtp_property(b"Socket-Type", socket_type)
    if identity is not None:
        body += zmtp_property(b"Identity", identity)
    return zmtp_command(b"READY", body)


def zmtp_frame(data: bytes, more: bool = False) -> bytes:
    flags = 0x01 if more else 0x00
    if len(data) < 256:
        return bytes([flags, len(data)]) + data
    return bytes([flags | 0x02]) + struct.pack(">Q", len(data)) + data


def tcp_payload(rng: random.Random, corpus: Corpus, curve: bool = False) -> list[bytes]:
    """One connection's worth of bytes, in pieces."""
    roll = rng.randrange(12)
    greeting = zmtp_greeting(rng)
    if curve and rng.random() < 0.5:   # a CURVE client that cannot do CURVE
        greeting = zmtp_greeting(rng, b"CURVE")
        return [greeting, rng.choice([zmtp_command(b"HELLO", rng.randbytes(rng.randrange(200))),
                                      zmtp_command(b"HELLO", b"\x01\x00" + b"\x00" * 72 +
                                                   rng.randbytes(120)),
                                      rng.randbytes(rng.randrange(1, 300))])]
    if roll == 0:
        return [rng.randbytes(rng.choice([1, 10, 64, 500, 5000]))]
    if roll == 1:
        return [greeting[:rng.randrange(1, len(greeting))]]
    if roll == 2:
        return [mutate_bytes(rng, greeting, rng.randbytes(64))]
    if roll == 3:
        return [zmtp_greeting(rng, rng.choice([b"CURVE", b"PLAIN", b"GSSAPI", b"BOGUS", b""]))]
    if roll == 4:
        return [zmtp_greeting(rng, major=rng.choice([1, 2, 4, 255]))]
    if roll == 5:
        return [greeting, zmtp_command(rng.choice([b"READY", b"ERROR", b"PING", b"HELLO", b"X"]),
                                       rng.randbytes(rng.randrange(40)))]
    if roll == 6:
        return [greeting, ready(rng.choice([b"DEALER", b"REQ", b"PUB", b"ROUTER", b"BOGUS"]))]
    if roll == 7:     # a frame that claims to be enormous
        return [greeting, ready(), bytes([0x02]) + struct.pack(">Q", rng.choice([2 ** 63 - 1, 2 ** 40,
                                                                                  2 ** 24]))]
    if roll == 8:     # a full handshake, then fuzz frames as ZMTP
        identity = None if rng.random() < 0.5 else rng.randbytes(rng.randrange(1, 20)).lstrip(b"\x00") or b"x"
        frames = [zmtp_frame(fuzz_frame(rng, corpus)) for _ in range(rng.randrange(1, 6))]
        return [greeting, ready(identity=identity), *frames]
    if roll == 9:     # garbage where the frame flags should be
        return [greeting, ready(), rng.randbytes(rng.randrange(1, 100))]
    if roll == 10:    # a multipart message that never ends
        return [greeting, ready(), zmtp_frame(b"a", more=True), zmtp_frame(b"b", more=True)]
    return [greeting, ready(), zmtp_command(b"READY", b"")]          # READY twice


# --- the test ----------------------------------------------------------------------------------

def send_patiently(sock: zmq.Socket, parts: list[bytes], tries: int = 1) -> bool:
    """Send unless the DEALER has no connection to queue on (CURVE refused it, say)."""
    for _ in range(tries):
        try:
            sock.send_multipart(parts, flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            sock.poll(5, zmq.POLLOUT)
    return False


@pytest.mark.parametrize("with_curve", [False, True], ids=["plain", "curve"])
def test_fuzz_then_a_real_job(tmp_path, capsys, with_curve):
    rng = random.Random(SEED + with_curve)
    frames, tcp_total = (FRAMES, TCP_SESSIONS) if not with_curve else (FRAMES // 4, TCP_SESSIONS // 4)
    server_keys = client_keys = None
    if with_curve:
        from arnisd.cluster import security
        server_public, server_secret = zmq.curve_keypair()
        known = zmq.curve_keypair()
        server_keys = security.CurveServerKeys(server_public, server_secret, frozenset([known[0]]))
        client_keys = security.CurveClientKeys(known[0], known[1], server_public)
    running = RunningCoordinator(tmp_path, heartbeat_interval_s=0.5, liveness=6,
                                 max_failures=10 ** 6, max_lost=10 ** 6, timeout_s=200,
                                 curve=server_keys)
    coordinator = running.coordinator
    context = zmq.Context.instance()
    dealers, stalled = [], []
    sent = multipart = unsent = tcp_pieces = tcp_sessions = 0
    started = time.monotonic()
    try:
        for index in range(12):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, 100000)
            sock.setsockopt(zmq.ROUTING_ID, f"fuzz{index % 5}-{index}".encode())
            if with_curve and index % 4 != 3:             # known key, unknown key, or plaintext
                public, secret = known if index % 4 != 2 else zmq.curve_keypair()
                sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
                sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
                sock.setsockopt(zmq.CURVE_SERVERKEY, server_keys.public_key)
            sock.connect(running.endpoint)
            dealers.append(sock)
        corpus = Corpus(rng, running.tiles, [])
        for index, sock in enumerate(dealers[:6]):       # half of them are registered workers
            message = corpus.message()
            message.update(t="register", worker_id=f"fuzz{index}", leases=[],
                           caps={"os": "Fuzz", "cpu": 1, "memory_mb": 1, "slots": 2})
            message.pop("session", None)
            for key in ("tile", "lease", "seq", "rx", "rz", "records", "count", "digest",
                        "content_digest", "elapsed_s", "error"):
                message.pop(key, None)
            send_patiently(sock, [pack(message)], tries=100)
        time.sleep(0.5)
        # --- DEALER frames, interleaved with raw TCP sessions
        tcp_every = max(1, frames // max(1, tcp_total))
        for count in range(frames):
            if count % 200 == 0:
                corpus.leases = [(r["tile"], r["lease"]) for r in running.status()["tiles"]
                                 if r["state"] == "leased"]
                for sock in dealers:                      # read what came back, ignore it
                    while sock.poll(0):
                        sock.recv_multipart()
            sock = rng.choice(dealers)
            if rng.random() < 0.08:
                parts = [fuzz_frame(rng, corpus) for _ in range(rng.randrange(2, 5))]
                multipart += 1
            else:
                parts = [fuzz_frame(rng, corpus)]
            if send_patiently(sock, parts):
                sent += 1
            else:
                unsent += 1
            if count % tcp_every == 0 and tcp_sessions < tcp_total:
                pieces = tcp_payload(rng, corpus, with_curve)
                try:
                    conn = socket.create_connection(("127.0.0.1", running.port), timeout=2)
                except OSError:
                    continue
                tcp_sessions += 1
                try:
                    for piece in pieces:
                        conn.sendall(piece)
                        tcp_pieces += 1
                    if rng.random() < 0.3:
                        conn.settimeout(0.05)
                        try:
                            conn.recv(4096)
                        except OSError:
                            pass
                except OSError:
                    pass                                  # the coordinator hung up: fine
                if len(stalled) < 8 and rng.random() < 0.05:
                    stalled.append(conn)                  # left open half-way
                else:
                    if rng.random() < 0.5:                # a reset instead of a close
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
            if count % 500 == 0:
                assert running.thread.is_alive() and running.error is None, running.error
        fuzz_s = time.monotonic() - started
        assert running.thread.is_alive() and running.error is None, running.error
        status = running.status()
        counts = {k: status[k] for k in ("pending", "in_progress", "completed", "failed")}
        assert sum(counts.values()) == len(running.tiles) == status["total_chunks"], counts
        assert status["completed"] == 0 and status["chunks_merged"] == 0   # nothing forged got in
        errors = coordinator.protocol_errors
        received = coordinator.messages_in
    finally:
        for sock in dealers:
            sock.close(0)
    # --- then real workers finish the job on the same coordinator (fuzzers are gone; their
    #     leases expire), while the stalled raw connections are still open
    workers = start_workers(running.endpoint, 2, curve=client_keys)
    try:
        status = running.wait_finished(150)
        job_s = time.monotonic() - started - fuzz_s
        assert status["completed"] == len(running.tiles) and status["failed"] == 0, status
        assert running.world() == running.expected_world()
    finally:
        stop_workers(workers)
        for conn in stalled:
            conn.close()
        running.close()
    with capsys.disabled():
        print(f"\nfuzz ({'CURVE' if with_curve else 'plaintext'}, seed {SEED}): survived {sent} DEALER messages ({multipart} multipart, "
              f"{unsent} not sendable) of which the coordinator received {received} and rejected "
              f"{errors} as bad frames, plus {tcp_pieces} raw TCP writes on {tcp_sessions} "
              f"connections ({len(stalled)} left stalled) in {fuzz_s:.1f} s; then a real "
              f"{len(running.tiles)}-tile job completed in {job_s:.1f} s with the expected world")
