"""CURVE and the token end to end with real `arnisd run` daemons on 127.0.0.1.

Keys come from `arnisd keygen`; the coordinator's config lists the two workers' public keys (a
folder of .key files) and a token file. Two workers with their keys and the token make the
bundled extract's sub-area, equal to the in-process world. A worker with an unlisted key and
one without CURVE never register; a worker with a listed key but the wrong token is refused and
exits with code 2.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, free_port, run_arnisd
from daemon_control import start_daemon, stop_daemons, write_coordinator_config, write_worker_config
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)
TOKEN = "shared-token-for-the-daemon-test"


def keygen(folder: Path, name: str) -> None:
    proc = run_arnisd("keygen", "--output", str(folder), "--name", name, timeout_s=60)
    assert proc.returncode == 0, proc.stderr


def test_curve_and_token_with_real_daemons(tmp_path, reference_worlds):
    keys = tmp_path / "keys"
    for name in ("coordinator", "w1", "w2", "stranger"):
        keygen(keys, name)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for name in ("w1", "w2"):
        shutil.copy(keys / f"{name}.key", allowed / f"{name}.key")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    port = free_port()
    output = tmp_path / "out" / "world"
    output.parent.mkdir()
    coordinator_config = write_coordinator_config(
        tmp_path / "coordinator.toml", port, BUNDLED_TENTH_BBOX, BUNDLED_EXTRACT, output, 0.004, heartbeat_interval_s=0.5,
        liveness=6,
        extra=(f'token_file = "{token_file}"\n'
               f'curve_secret_key_file = "{keys / "coordinator.key_secret"}"\n'
               f'curve_allowed_keys = "{allowed}"\n'))

    def worker_config(worker_id: str, key: str | None, token: str | None) -> Path:
        path = write_worker_config(tmp_path / f"{worker_id}.toml", port, worker_id)
        extra = ""
        if token is not None:
            extra += f'token = "{token}"\n'
        if key is not None:
            extra += (f'curve_secret_key_file = "{keys / (key + ".key_secret")}"\n'
                      f'coordinator_public_key = "{keys / "coordinator.key"}"\n')
        path.write_text(path.read_text() + extra)
        return path

    logs = {name: tmp_path / f"{name}.log" for name in
            ("coordinator", "w1", "w2", "stranger", "plain", "badtoken")}
    coordinator = start_daemon(coordinator_config, logs["coordinator"], args=["--exit-when-done"])
    intruders = {
        "stranger": start_daemon(worker_config("stranger", "stranger", TOKEN), logs["stranger"]),
        "plain": start_daemon(worker_config("plain", None, TOKEN), logs["plain"]),
        "badtoken": start_daemon(worker_config("badtoken", "w1", "not-the-token"), logs["badtoken"]),
    }
    workers = []
    try:
        # the bad-token worker has a listed key, so it gets as far as being refused
        assert intruders["badtoken"].wait(60) == 2, logs["badtoken"].read_text()
        time.sleep(1.0)                          # the intruders have had their chances
        workers = [start_daemon(worker_config(name, name, TOKEN), logs[name])
                   for name in ("w1", "w2")]
        assert coordinator.wait(240) == 0, logs["coordinator"].read_text()
    finally:
        stop_daemons([coordinator, *workers, *intruders.values()])
    coordinator_log = logs["coordinator"].read_text()
    for name in ("w1", "w2"):
        assert f"worker {name} registered" in coordinator_log
    for name in ("stranger", "plain"):
        assert f"worker {name} registered" not in coordinator_log
    assert "refused a CURVE client with an unknown public key" in coordinator_log
    assert "refused worker 'badtoken': bad token" in coordinator_log
    assert "bad token" in logs["badtoken"].read_text()
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())
