"""The watchdog means something: the coordinator's loop records each pass (also between jobs,
while it only heartbeats), and the service is healthy only while that loop turns."""

from __future__ import annotations

import time

from arnisd.cluster.coordinator import Coordinator
from arnisd.cluster.coordinator_config import CoordinatorConfig
from service_control import RunningService, service_config


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
    with RunningService(service_config(tmp_path, heartbeat_interval_s=0.2), workers=0) as running:
        service = running.service
        time.sleep(0.3)
        assert service.healthy()
        service.coordinator.loop_at -= 60            # as if the loop had hung for a minute
        assert not service.healthy()
        time.sleep(0.3)                              # the next pass brings it back
        assert service.healthy()
