"""The long-running coordinator service in a test: its config, a job request for it, and the
service serving on a thread with real worker processes (stopped, and checked to stop cleanly,
on leaving the ``with`` block)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

from arnisd.cluster.slots import SPAWN
from arnisd.cluster.worker_process import run_worker_process
from arnisd.cluster.worker_config import WorkerConfig
from arnisd.service.config import CoordinatorMachineConfig
from arnisd.service.coordinator_service import CoordinatorService
from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, free_port


def service_config(tmp_path: Path, **overrides) -> CoordinatorMachineConfig:
    """A coordinator service on 127.0.0.1 with its folders under ``tmp_path``."""
    base = CoordinatorMachineConfig(bind_host="127.0.0.1", port=free_port(), http_port=0,
                             state_dir=tmp_path / "state", output_root=tmp_path / "worlds",
                             cache_dir=tmp_path / "cache", heartbeat_interval_s=0.5)
    return replace(base, **overrides)


def tenth_job(output: str, **extra) -> dict:
    """A job request for the tenth of the bundled extract, into ``output``."""
    return {"osm_file": str(BUNDLED_EXTRACT), "bbox": BUNDLED_TENTH_BBOX, "output": output, **extra}


class RunningService:
    """A service serving on a thread, with ``workers`` worker processes of one slot each; stops
    everything on leaving the ``with`` block and checks that serve() returned 0."""

    def __init__(self, config: CoordinatorMachineConfig, workers: int = 2,
                 generator: str | None = None):
        self.service = CoordinatorService(config)
        self.ready = threading.Event()
        self.exit_code = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.workers = [SPAWN.Process(target=run_worker_process, args=(WorkerConfig(
            coordinator=f"tcp://127.0.0.1:{config.port}", worker_id=f"w{i}", slots=1,
            generator=generator, heartbeat_interval_s=0.5),)) for i in range(workers)]

    def _serve(self):
        self.exit_code = self.service.serve(ready=lambda text: self.ready.set())

    def __enter__(self) -> "RunningService":
        self.thread.start()
        assert self.ready.wait(30), "the service did not become ready"
        for process in self.workers:
            process.start()
        return self

    def __exit__(self, *exc):
        self.service.stop()
        self.thread.join(60)
        for process in self.workers:
            process.terminate()
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        assert not self.thread.is_alive(), "serve() did not return after stop()"
        assert self.exit_code == 0

    def wait_state(self, job_id: str, states, timeout_s: float = 180) -> dict:
        """The job's document once its state is one of ``states``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            doc = self.service.job(job_id)
            if doc["state"] in states:
                return doc
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} never reached {states}: {self.service.job(job_id)}")
