"""Daemon log lines: JSON objects when not on a terminal, for stdlib logging and structlog."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap

from arnisd.logs import JsonFormatter, uses_json
from conftest import REPO_ROOT


def test_json_formatter_fields_extras_and_errors():
    record = logging.LogRecord("arnisd.cluster.coordinator", logging.WARNING, __file__, 1,
                               "worker %s left", ("w1",), None)
    record.tile = "chunk_0_0"
    doc = json.loads(JsonFormatter().format(record))
    assert doc["level"] == "warning" and doc["logger"] == "arnisd.cluster.coordinator"
    assert doc["event"] == "worker w1 left" and doc["tile"] == "chunk_0_0"
    assert doc["timestamp"].endswith("Z") and isinstance(doc["pid"], int)
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["error"]


def test_auto_is_json_off_a_terminal():
    assert uses_json("auto", io.StringIO()) and uses_json("json", io.StringIO())
    assert not uses_json("console", io.StringIO())


def test_a_daemon_process_writes_only_json_lines():
    script = textwrap.dedent("""
        import logging
        from arnisd.logs import configure_daemon_logging
        from structlog import get_logger
        configure_daemon_logging("auto", "info")
        logging.getLogger("arnisd.cluster.worker").info("registered with %s", "tcp://127.0.0.1:1")
        logging.getLogger("arnisd.cluster.worker").debug("hidden at info")
        get_logger("arnisd.generate").info("progress", chunks=10)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [line["event"] for line in lines] == ["registered with tcp://127.0.0.1:1", "progress"]
    assert lines[1]["chunks"] == 10


def test_spawned_children_and_warnings_log_json_too(tmp_path):
    """A slot process (spawn) that calls ``configure_child_logging`` logs as its daemon does,
    and a Python warning becomes a JSON record instead of a bare line."""
    script = tmp_path / "daemon.py"
    script.write_text(textwrap.dedent("""
        import logging, multiprocessing, warnings
        from arnisd.logs import configure_child_logging, configure_daemon_logging

        def child():
            assert configure_child_logging()
            logging.getLogger("arnisd.elevation").warning("from a slot")
            warnings.warn("careful")

        if __name__ == "__main__":
            configure_daemon_logging("auto", "info")
            warnings.warn("in the daemon")
            p = multiprocessing.get_context("spawn").Process(target=child)
            p.start(); p.join()
            assert p.exitcode == 0
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("ARNISD_DAEMON_LOG_FORMAT", None)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    events = [line["event"] for line in lines]
    assert "from a slot" in events
    assert sum("careful" in e for e in events) == 1 and sum("in the daemon" in e for e in events) == 1


def _run_daemon_script(tmp_path, body: str) -> list[dict]:
    script = tmp_path / "daemon.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("ARNISD_DAEMON_LOG_FORMAT", None)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]


def test_a_child_logs_through_structlog_as_its_daemon(tmp_path):
    lines = _run_daemon_script(tmp_path, """
        import multiprocessing
        from arnisd.logs import configure_child_logging, configure_daemon_logging

        def child():
            assert configure_child_logging()
            from structlog import get_logger
            get_logger("arnisd.generate").info("progress", chunks=10, child=True)
            get_logger("arnisd.generate").debug("hidden at info", child=True)

        if __name__ == "__main__":
            configure_daemon_logging("auto", "info")
            from structlog import get_logger
            get_logger("arnisd.generate").info("progress", chunks=10, child=False)
            p = multiprocessing.get_context("spawn").Process(target=child)
            p.start(); p.join()
            assert p.exitcode == 0
    """)
    assert [(line["event"], line["child"]) for line in lines] == [("progress", False),
                                                                  ("progress", True)]
    daemon, child = ({k: v for k, v in line.items() if k not in ("child", "timestamp")}
                     for line in lines)
    assert daemon == child and daemon["chunks"] == 10 and daemon["level"] == "info"
    assert lines[0]["timestamp"].endswith("Z") and lines[1]["timestamp"].endswith("Z")


def test_importing_the_child_logging_setup_does_not_load_structlog():
    """A slot imports this module at start; structlog is loaded only by the configuration."""
    code = ("import sys; import arnisd.logs; "
            "assert 'structlog' not in sys.modules, 'structlog loaded'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 0, proc.stderr
