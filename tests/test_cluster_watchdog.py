"""The watchdog means something: the coordinator's loop records each pass (also between jobs,
while it only heartbeats), and the service is healthy only while that loop turns."""

from __future__ import annotations

import threading
import time

from arnisd.cluster.coordinator import Coordinator
from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.service.config import CoordinatorMachineConfig
from arnisd.service.coordinator_service import CoordinatorService
from conftest import free_port


def test_loop_at_advances_while_idle():
    coordinator = Coordinator(config=CoordinatorConfig(heartbeat_interval_s=0.2))
    coordinator.bind()
    try:
        before = coordinator.loop_at
        coordinator.idle(0.3)
        assert coordinator.loop_at > before and time.monotonic() - coordinator.loop_at < 0.2
    finally:
        coordinator.close()


def test_service_is_healthy_only_while_the_loop_turns(tmp_path):
    config = CoordinatorMachineConfig(bind_host="127.0.0.1", port=free_port(), http_port=0,
                               state_dir=tmp_path / "state", output_root=tmp_path / "worlds",
                               cache_dir=tmp_path / "cache", heartbeat_interval_s=0.2)
    service = CoordinatorService(config)
    ready = threading.Event()
    thread = threading.Thread(target=service.serve, kwargs={"ready": lambda text: ready.set()},
                              daemon=True)
    thread.start()
    try:
        assert ready.wait(30)
        time.sleep(0.3)
        assert service.healthy()
        service.coordinator.loop_at -= 60            # as if the loop had hung for a minute
        assert not service.healthy()
        time.sleep(0.3)                              # the next pass brings it back
        assert service.healthy()
    finally:
        service.stop()
        thread.join(30)
    assert not thread.is_alive()
