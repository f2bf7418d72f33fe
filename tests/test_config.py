"""Config files: the shipped examples load, and every mistake names the file, key and problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from arnisd.service.config import (ConfigError, CoordinatorMachineConfig, WorkerMachineConfig,
                                   load_config)
from arnisd.errors import UserError
from arnisd.service.job_request import JobRequest, JobRequestError
from conftest import REPO_ROOT, run_arnisd

EXAMPLES = REPO_ROOT / "config"


def write(tmp_path: Path, text: str, name: str = "arnisd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_coordinator_example_loads():
    config = load_config(EXAMPLES / "coordinator.toml")
    assert isinstance(config, CoordinatorMachineConfig) and config.role == "coordinator"
    assert (config.bind_host, config.port) == ("0.0.0.0", 5555)
    assert (config.http_host, config.http_port) == ("127.0.0.1", 8750)
    assert config.state_dir == Path("/var/lib/arnisd")
    assert config.tile_size_deg is None and config.halo_blocks == 32     # sized by their work
    assert (config.heartbeat_interval_s, config.heartbeat_liveness, config.max_retries) == (1.0, 3, 3)
    assert config.token is None and config.job is None
    assert config.overpass_block_km2 == 25.0
    assert config.status_url == "http://127.0.0.1:8750"


def test_shipped_worker_example_loads():
    config = load_config(EXAMPLES / "worker.toml")
    assert isinstance(config, WorkerMachineConfig) and config.role == "worker"
    assert config.coordinator == "tcp://127.0.0.1:5555"
    assert config.slots == (os.cpu_count() or 1) and config.worker_id
    assert config.token is None


def test_shipped_examples_document_every_key():
    """Each example mentions every field its role accepts, so operators can find them."""
    for name, cls in (("coordinator.toml", CoordinatorMachineConfig), ("worker.toml", WorkerMachineConfig)):
        text = (EXAMPLES / name).read_text()
        for field_name, spec in cls.__dataclass_fields__.items():
            if field_name == "source" or spec.metadata.get("derived"):
                continue
            assert f"{field_name} =" in text or f"[{field_name}]" in text, (name, field_name)


def test_every_example_value_uncommented_still_loads(tmp_path):
    """Uncommenting the examples' optional lines gives a valid file too."""
    (tmp_path / "token").write_text("x" * 32)
    for name in ("coordinator.toml", "worker.toml"):
        lines = []
        for line in (EXAMPLES / name).read_text().splitlines():
            stripped = line.lstrip("# ")
            if line.startswith("# ") and ("=" in stripped.split("#")[0] or stripped.startswith(("[job]", "[hosts]"))):
                if stripped.startswith(("token_file", "osm_file", "curve_", "coordinator_public_key")):
                    continue      # would point at files that do not exist here
                lines.append(stripped)
            else:
                lines.append(line)
        config = load_config(write(tmp_path, "\n".join(lines), name))
        assert config.token == "change-me-to-a-long-random-string"
        if name == "coordinator.toml":
            assert config.job is not None and config.job.output == "kouvola"
            assert [(h.destination, h.slots) for h in config.hosts.hosts] == [
                ("alice@desk", None), ("bob@laptop", 2)]
            assert config.hosts.ssh.options == ("Port=2222",)


def test_relative_paths_are_taken_from_the_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "area.osm.pbf").write_bytes(b"")
    path = write(tmp_path, 'role = "coordinator"\nstate_dir = "state"\n'
                           '[job]\noutput = "w"\nosm_file = "data/area.osm.pbf"\n')
    config = load_config(path)
    assert config.state_dir == tmp_path / "state"
    assert config.output_root == tmp_path / "state" / "worlds"
    assert config.cache_dir == tmp_path / "state" / "cache"
    assert config.job.osm_file == str(tmp_path / "data" / "area.osm.pbf")


def test_token_file(tmp_path):
    (tmp_path / "token").write_text("  a-long-secret-token \n")
    config = load_config(write(tmp_path, 'role = "worker"\ntoken_file = "token"\n'))
    assert config.token == "a-long-secret-token"


@pytest.mark.parametrize("text, key, problem", [
    ('port = 1\n', "role", "missing"),
    ('role = "manager"\n', "role", "not one of"),
    ('role = "coordinator"\nprot = 5555\n', "prot", "did you mean 'port'"),
    ('role = "coordinator"\nport = "5555"\n', "port", "must be an integer"),
    ('role = "coordinator"\nport = 70000\n', "port", "outside 0..65535"),
    ('role = "coordinator"\nhttp_port = true\n', "http_port", "must be an integer"),
    ('role = "coordinator"\ntile_size_deg = 0\n', "tile_size_deg", "above 0"),
    ('role = "coordinator"\nheartbeat_interval_s = -1\n', "heartbeat_interval_s", "above 0"),
    ('role = "coordinator"\nheartbeat_liveness = 0\n', "heartbeat_liveness", "outside 1"),
    ('role = "coordinator"\nlog_format = "xml"\n', "log_format", "not one of"),
    ('role = "coordinator"\noverpass_urls = "http://x"\n', "overpass_urls", "list"),
    ('role = "coordinator"\noverpass_urls = ["ftp://x"]\n', "overpass_urls", "not an http"),
    ('role = "coordinator"\noverpass_block_km2 = 0\n', "overpass_block_km2", "above 0"),
    ('role = "coordinator"\ntoken = "short"\n', "token", "at least 8"),
    ('role = "coordinator"\ntoken = "long-enough"\ntoken_file = "t"\n', "token_file", "not both"),
    ('role = "coordinator"\ntoken_file = "missing"\n', "token_file", "cannot be read"),
    ('role = "coordinator"\nbind_host = "a b"\n', "bind_host", "not a host"),
    ('role = "coordinator"\n[job]\nbbox = "1,2,3,4"\n', "job.output", "missing"),
    ('role = "coordinator"\n[job]\noutput = "w"\n', "job.bbox", "missing"),
    ('role = "coordinator"\n[job]\noutput = "/abs"\nbbox = "1,2,3,4"\n', "job.output", "under"),
    ('role = "coordinator"\n[job]\noutput = "w"\nbbox = "3,2,1,4"\n', "job.bbox", "below"),
    ('role = "coordinator"\n[job]\noutput = "w"\nbbox = "1,2,3,4"\nscale = 0\n', "job.scale", "(0"),
    ('role = "coordinator"\n[job]\noutput = "w"\nbbox = "1,2,3,4"\nsize = 2\n', "job.size", "unknown"),
    ('role = "coordinator"\njob = 3\n', "job", "must be an object"),
    ('role = "worker"\nslots = 0\n', "slots", "outside 1"),
    ('role = "worker"\ncoordinator = "ipc:///tmp/x"\n', "coordinator", "tcp://HOST:PORT"),
    ('role = "worker"\ncoordinator = "tcp://host:0"\n', "coordinator", "tcp://HOST:PORT"),
    ('role = "worker"\ncoordinator_http = "host:8750"\n', "coordinator_http", "http://"),
    ('role = "worker"\nworker_id = ""\n', "worker_id", "non-empty"),
    ('role = "worker"\nport = 5555\n', "port", "unknown key"),
])
def test_errors_name_file_key_and_problem(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert message.startswith(str(path)), message
    assert f"'{key}'" in message and problem in message, message
    assert "\n" not in message


def test_file_level_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    bad = write(tmp_path, 'role = "worker"\nslots = \n')
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_config(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


def test_job_request_round_trip_and_spec(tmp_path):
    request = JobRequest.from_dict({"bbox": [60.52, 26.93, 60.54, 26.97], "output": "w",
                                    "scale": 2, "tile_size_deg": 0.004, "interior": True})
    again = JobRequest.from_dict(request.as_dict())
    assert again == request
    config = CoordinatorMachineConfig(output_root=tmp_path / "worlds", halo_blocks=16,
                                      overpass_block_km2=4.0)
    spec = request.to_job_spec(config)
    assert spec.output == tmp_path / "worlds" / "w" and spec.overpass_block_km2 == 4.0
    assert spec.tile_size_deg == 0.004 and spec.settings.halo_blocks == 16
    assert spec.settings.scale == 2.0 and spec.settings.interior is True
    with pytest.raises(JobRequestError, match="more than the coordinator's limit"):
        JobRequest.from_dict({"bbox": "60,26,61,27", "output": "w"}).to_job_spec(config)
    with pytest.raises(JobRequestError, match="not a file on the coordinator"):
        JobRequest.from_dict({"osm_file": str(tmp_path / "nope.pbf"), "output": "w"}).to_job_spec(config)


def test_bad_config_is_one_line_from_the_cli(tmp_path):
    """`arnisd status --config BAD` fails with the config's one-line error, no traceback."""
    path = write(tmp_path, 'role = "coordinator"\nhttp_prot = 1\n')
    proc = run_arnisd("status", "--config", str(path), timeout_s=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "http_prot" in proc.stderr and str(path) in proc.stderr


@pytest.mark.parametrize("table,message", [
    ('hosts = ["a@b:0"]', "'hosts.hosts'"),
    ('hosts = []', "'hosts.hosts'"),
    ('hosts = ["a@b"]\nport = 22', "'hosts.port'"),
    ('hosts = "a@b"', "'hosts.hosts'"),
])
def test_a_bad_hosts_table_is_named(tmp_path, table, message):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f'role = "coordinator"\n[hosts]\n{table}\n'))
    assert message in str(caught.value)
