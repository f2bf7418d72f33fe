"""The coordinator's ROUTER socket: its options, CURVE security and bind; frames in and out.

A peer that cannot be reached makes a send fail at once (``ROUTER_MANDATORY``) instead of
queueing for nobody, and a worker reconnecting under the same routing id takes its place
(``ROUTER_HANDOVER``). Frames are decoded here (``protocol.decode_from_worker``); what does not
decode is logged and handed on as None, for the caller to count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import zmq

from arnisd.cluster import protocol, security
from arnisd.cluster.coordinator_config import CoordinatorConfig

log = logging.getLogger("arnisd.cluster.router_socket")

HIGH_WATER_MARK_FRAMES = 1000


class PeerUnreachable(Exception):
    """The peer of a routing id is gone (disconnected, or never was)."""


class RouterSocket:
    """A bound ROUTER (on a free port when ``config.port`` is 0); ``endpoint`` is what
    workers connect to."""

    def __init__(self, context: zmq.Context, config: CoordinatorConfig) -> None:
        self.max_frame_bytes = config.max_frame_bytes
        sock = context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, config.max_frame_bytes)
        sock.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK_FRAMES)
        sock.setsockopt(zmq.RCVHWM, HIGH_WATER_MARK_FRAMES)
        address = f"tcp://{config.bind_address}"
        curve = None
        try:
            curve = security.secure_server(sock, config.curve)   # before bind
            if config.port:
                sock.bind(f"{address}:{config.port}")
                port = config.port
            else:
                port = sock.bind_to_random_port(address)
        except BaseException:
            sock.close(linger=0)           # a retried bind must not leak sockets or ZAP domains
            if curve is not None:
                curve.close()
            raise
        self.socket = sock
        self.curve = curve                 # the CURVE authenticator (None without keys)
        self.endpoint = f"{address}:{port}"

    def wait(self, timeout_ms: int) -> bool:
        """Whether a frame arrived within ``timeout_ms``."""
        return bool(self.socket.poll(timeout_ms, zmq.POLLIN))

    def send(self, identity: bytes, frame: bytes) -> bool:
        """Send without blocking; False if the peer is not reading (the frame is dropped).
        Raises ``PeerUnreachable``."""
        try:
            self.socket.send_multipart([identity, frame], flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("worker %r is not reading (high-water mark); frame dropped", identity)
            return False
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                raise PeerUnreachable(identity) from None
            raise
        return True

    def receive(self, max_messages: int = 1000) -> Iterator[tuple[bytes | None, dict | None]]:
        """``(identity, message)`` for what has arrived, up to ``max_messages``; message None
        for a frame refused by the protocol (logged), identity None for a malformed message."""
        for _ in range(max_messages):
            try:
                parts = self.socket.recv_multipart(flags=zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            if len(parts) != 2:
                log.warning("dropped a message of %d parts", len(parts))
                yield None, None
                continue
            identity, frame = parts
            try:
                message = protocol.decode_from_worker(frame, self.max_frame_bytes)
            except protocol.ProtocolError as exc:
                log.warning("dropped a bad frame from %r: %s", identity[:32], exc)
                message = None
            yield identity, message

    def close(self) -> None:
        self.socket.close(linger=0)
        if self.curve is not None:
            self.curve.close()
