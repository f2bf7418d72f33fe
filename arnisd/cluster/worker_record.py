"""What the coordinator knows of one registered worker.

States (``WorkerRecord.state``)::

    (register) ──► idle ◄──lease / result or lease given back──► active
                     └───────────┴──bye, silent too long, unreachable──► (forgotten)

A worker asked to register again (``awaiting_register``) keeps its state but gets no new lease
until it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from arnisd.cluster.worker_speed import WorkerSpeed


class WorkerState(StrEnum):
    IDLE = "idle"               # registered, no lease
    ACTIVE = "active"           # at least one lease


@dataclass(slots=True)
class WorkerRecord:
    identity: bytes
    worker_id: str
    caps: dict
    slots: int
    leases: set = field(default_factory=set)     # tile ids of the current job
    last_seen: float = 0.0
    last_sent: float = 0.0
    registered_at: float = 0.0
    tiles_done: int = 0                          # in the current job
    chunks_received: int = 0                     # in the current job
    reg: int | None = None                       # its registration round
    awaiting_register: bool = False              # asked to register again: no leases until then
    told_to_shut_down: bool = False
    reregister_sent: float = 0.0
    lease_ahead: int = 0                         # leases it may hold beyond its slots
    speed: WorkerSpeed = field(default_factory=WorkerSpeed)   # measured per slot

    @property
    def state(self) -> WorkerState:
        return WorkerState.ACTIVE if self.leases else WorkerState.IDLE

    def room(self, ahead: bool) -> int:
        """Leases it can take now: its free slots, plus its lease-ahead if ``ahead``."""
        return self.slots + (self.lease_ahead if ahead else 0) - len(self.leases)
