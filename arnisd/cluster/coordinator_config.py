"""The coordinator's knobs: its socket, heartbeats, retry limits and flow control."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from arnisd.cluster import protocol, security


@dataclass(slots=True)
class CoordinatorConfig:
    """Knobs of the coordinator (a coordinator's TOML config fills these)."""

    bind_address: str = "127.0.0.1"
    port: int = 0                          # 0: pick a free port
    heartbeat_interval_s: float = 1.0
    liveness: int = 3
    max_failures: int = 3                  # a tile's own failures in a row before it is failed
    max_lost: int = 10                     # leases lost with their worker before it is failed
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 30.0
    credit_frames: int = 8
    prefetch_extra: int = 2
    lease_ahead: int = 0                   # leases per worker beyond its slots: the next tile
                                           # waits in the worker, so a slot never idles while
                                           # its last result is saved, sent and committed
    token: str | None = None
    max_workers: int = 1024
    max_frame_bytes: int = protocol.MAX_RESULT_FRAME_BYTES
    fsync: bool = True
    stop_workers_when_done: bool = False
    curve: security.CurveServerKeys | None = None   # CURVE keys: encrypt, admit listed workers
    cost_model_path: Path | None = None    # its tile cost model (None: the default, not kept)
    calibrations_path: Path | None = None  # workers' benchmark figures (None: not kept)
    speeds_path: Path | None = None        # workers' measured speeds (None: this process only)

    @property
    def expiry_s(self) -> float:
        """Silence after which a peer is dead."""
        return self.heartbeat_interval_s * self.liveness
