"""A worker's config: where its coordinator is, how many slots, heartbeats, keys.

Light on purpose (no ``zmq``): a local cluster's worker process unpickles these before it
loads the worker.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from arnisd.cluster.protocol import MAX_LEASE_FRAME_BYTES

if TYPE_CHECKING:
    from arnisd.cluster.security import CurveClientKeys


@dataclass(slots=True)
class WorkerConfig:
    """Knobs of a worker (a worker's TOML config fills these)."""

    coordinator: str = "tcp://127.0.0.1:5570"
    worker_id: str = field(default_factory=platform.node)
    slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    generator: str | None = None              # module:function; None = the real generator
    heartbeat_interval_s: float = 1.0         # until the coordinator's welcome says otherwise
    liveness: int = 3
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 32.0
    token: str | None = None
    max_frame_bytes: int = MAX_LEASE_FRAME_BYTES
    exit_when_coordinator_lost_s: float | None = None   # local clusters: give up eventually
    scratch_dir: Path | None = None           # finished results wait here; None: in memory
    curve: CurveClientKeys | None = None      # CURVE keys (the coordinator's too)
    slot_start_method: str = "spawn"          # "fork" where the worker already holds the
                                              # generator (see arnisd.cluster.slots)
