"""Registering a worker: whether it is admitted, and what it keeps of the leases it claims.

A register is refused for a bad token, for a routing id other than the one a token holder
gives that worker id, or when ``max_workers`` are connected. A register resent in the same
round (the welcome was lost) is answered again and changes nothing. Otherwise the worker's
record is made anew (its counters kept) and its claims are settled with the current job
(``JobRun.settle_claims``): what is still its own, or that nobody got since, it keeps and
streams again from the start; what it held but did not claim goes back to the queue. It is
told to cancel every claim it does not keep; between jobs only claims from another session
are cancelled, as claims of this one are judged when the next job asks again.

No sockets: ``register_worker`` returns the record to keep and the replies to send. A peer
that sends frames without being registered (e.g. after a coordinator restart) is asked to
register, at most once per heartbeat interval (``UnknownPeers``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from arnisd.cluster import protocol, security
from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.job_run import JobRun
from arnisd.cluster.worker_record import WorkerRecord

log = logging.getLogger("arnisd.cluster.registration")


@dataclass(slots=True)
class Registration:
    worker: WorkerRecord | None                           # to keep (None: refused)
    replies: list[bytes] = field(default_factory=list)    # for the registering peer, in order


def welcome(config: CoordinatorConfig, session: str, kept: dict[str, int]) -> bytes:
    return protocol.make("welcome", heartbeat_interval_s=config.heartbeat_interval_s,
                         liveness=config.liveness, session=session,
                         keep=[[t, a] for t, a in sorted(kept.items())])


def register_worker(identity: bytes, message: dict, old: WorkerRecord | None,
                    workers_connected: int, job: JobRun | None, config: CoordinatorConfig,
                    session: str, now: float) -> Registration:
    """``old``: the record under this routing id, if any; ``job``: the current job."""
    refusal = security.registration_refusal(identity, message["worker_id"],
                                            message.get("token"), config.token)
    if refusal is not None:
        log.warning("refused worker %r: %s", message["worker_id"], refusal)
        return Registration(None, [protocol.make("reject", reason=refusal)])
    reg = message.get("reg")
    if old is not None and reg is not None and old.reg == reg and not old.awaiting_register:
        old.last_seen = now
        kept = {t: job.book.records[t].lease for t in old.leases} if job else {}
        return Registration(old, [welcome(config, session, kept)])
    if old is None and workers_connected >= config.max_workers:
        return Registration(None, [protocol.make("reject", reason="too many workers")])
    caps = message["caps"]
    worker = WorkerRecord(identity, message["worker_id"], caps, int(caps["slots"]),
                          last_seen=now, registered_at=now,
                          lease_ahead=min(max(0, config.lease_ahead), int(caps["slots"])))
    worker.reg = reg
    if old is not None:
        worker.tiles_done, worker.chunks_received = old.tiles_done, old.chunks_received
    same_session = message.get("session") == session
    claimed = {tile: lease for tile, lease in message["leases"]} if same_session else {}
    kept: dict[str, int] = {}
    cancels: list[tuple[str, int]] = []
    if job is not None:
        claims = job.settle_claims(identity, claimed, now)
        kept, cancels = claims.kept, list(claims.released)
        for tile_id in claims.reclaimed:
            log.info("worker %s took back tile %s (lease %d)", worker.worker_id, tile_id,
                     kept[tile_id])
        worker.leases = set(kept)
    log.info("worker %s registered (%s)%s", worker.worker_id, caps,
             f", keeps {sorted(kept)}" if kept else "")
    if job is not None or not same_session:
        cancels += [(t, n) for t, n in message["leases"] if t not in kept]
    return Registration(worker, [welcome(config, session, kept)] + [
        protocol.make("cancel", tile=tile_id, lease=lease, reason="lease is not current")
        for tile_id, lease in cancels])


class UnknownPeers:
    """When each unregistered peer that sent a frame was last asked to register."""

    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        self._asked_at: dict[bytes, float] = {}

    def should_ask(self, identity: bytes, message: dict, now: float) -> bool:
        """A frame from ``identity``, not registered: whether to ask it to register now (and
        note it asked): once per heartbeat interval, not once per frame, never after a bye."""
        if message["t"] == "done":
            log.warning("dropped the result of tile %s (lease %d) from %r: not a registered "
                        "worker", message["tile"], message["lease"], identity[:64])
        if message["t"] == "bye" or \
                now - self._asked_at.get(identity, -1e9) < self.config.heartbeat_interval_s:
            return False
        if len(self._asked_at) > 4 * self.config.max_workers:
            self._asked_at.clear()
        self._asked_at[identity] = now
        return True

    def forget(self, identity: bytes) -> None:
        """``identity`` registered."""
        self._asked_at.pop(identity, None)
