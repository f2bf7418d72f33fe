"""Interrupting arnisd with real signals, real processes and the real bundled extract.

`arnisd generate` stopped mid-job by SIGTERM (to its main process alone), Ctrl-C (SIGINT to
its whole process group, as a terminal sends it) or SIGHUP: one line saying how to resume,
exit 128 + the signal's number, no traceback, and no process of the job left (the whole
session is scanned: the fork server, multiprocessing's resource tracker, workers and slots
are reparented when the main process ends, so looking at its children would miss them); the
run with ``--resume`` then makes the in-process reference world. The daemons (both roles),
``submit --wait`` and ``status --watch`` under Ctrl-C, SIGTERM and SIGHUP: no traceback, no
process left.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, arnisd_env, free_port
from daemon_control import (live_session_processes, log_lines, wait_until, write_coordinator_config,
                            write_worker_config)
from fake_generators import read_markers, slow_env
from journal_sql import committed_count
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)

LEFT_BEHIND_S = 5.0        # how long a job's processes may outlive its main process


def start_session(args: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    """``args`` as the leader of a new session (and process group), output to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_or_kill(process: subprocess.Popen, predicate, timeout_s: float, what: str,
                 interval_s: float = 0.05) -> None:
    """``wait_until(predicate)``; if it never holds, the process's session is killed."""
    try:
        wait_until(predicate, timeout_s, what, interval_s)
    except AssertionError:
        os.killpg(process.pid, signal.SIGKILL)
        raise


def send(process: subprocess.Popen, signum: int, group: bool) -> None:
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)


def assert_session_ends(process: subprocess.Popen, exit_code: int | tuple, log: Path) -> None:
    """The process exits ``exit_code`` (or one of them) within 30 s, and its session is empty
    ``LEFT_BEHIND_S`` later at the latest; its output has no traceback."""
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"still running 30 s after the signal:\n{log.read_text()[-2000:]}")
    try:
        wait_until(lambda: not live_session_processes(process.pid), LEFT_BEHIND_S,
                   "the session's last process")
    except AssertionError:
        left = live_session_processes(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"left running: {left}") from None
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert code in (exit_code if isinstance(exit_code, tuple) else (exit_code,)), text[-2000:]


def generate_args(output: Path) -> list[str]:
    return [sys.executable, "-m", "arnisd", "generate", "--osm-file", str(BUNDLED_EXTRACT),
            "--bbox", BUNDLED_TENTH_BBOX, "--output", str(output), "--chunk-size", "0.0025",
            "--workers", "2"]


@pytest.mark.parametrize("signum, group, exit_code", [
    (signal.SIGTERM, False, 143),         # kill, timeout, systemd, a CI runner
    (signal.SIGINT, True, 130),           # Ctrl-C in a terminal
], ids=["SIGTERM-main", "SIGINT-group"])
def test_interrupted_generate_leaves_nothing_running_and_resumes(tmp_path, reference_worlds,
                                                                 signum, group, exit_code):
    markers = tmp_path / "markers"
    markers.mkdir()
    output = tmp_path / "world"
    env = arnisd_env(slow_env(markers, 0.5))
    journal = tmp_path / f".{output.name}.arnisd-building" / ".arnisd-cluster" / "journal.sqlite3"
    log = tmp_path / "first.log"
    first = start_session(generate_args(output), env, log, tmp_path)
    wait_or_kill(first, lambda: committed_count(journal) >= 3, 120, "three tiles committed")
    send(first, signum, group)
    assert_session_ends(first, exit_code, log)
    lines = log_lines(log)
    assert any(re.match(r"interrupted; run again with --resume to continue", line)
               for line in lines), lines[-5:]
    assert lines[-1] == f"arnisd: interrupted ({signal.Signals(signum).name})"
    assert not output.exists()
    kept = committed_count(journal)
    assert kept >= 3                                    # what was committed stays
    made_before = set(read_markers(markers))

    second = subprocess.run([*generate_args(output), "--resume"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    match = re.search(r"resuming: (\d+) of (\d+) tiles already made", second.stderr)
    assert match and int(match.group(1)) >= kept, second.stderr[-2000:]
    # tiles, not leases: near the end an idle slot may back up a tile still being made
    made_again = {(m[2], m[3]) for m in set(read_markers(markers)) - made_before}
    assert len(made_again) <= int(match.group(2)) - kept
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())
    assert region_hashes(output) == region_hashes(reference_worlds.folder())   # byte for byte


def region_hashes(world: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((world / "region").glob("r.*.mca"))}


def test_sighup_and_early_interrupts_leave_nothing_running(tmp_path):
    """SIGHUP (a closed terminal) mid-job exits 129; a Ctrl-C while the workers' fork server
    and the workers are still starting gives no traceback from any of them either."""
    markers = tmp_path / "markers"
    markers.mkdir()
    env = arnisd_env(slow_env(markers, 0.5))
    log = tmp_path / "hup.log"
    job = start_session(generate_args(tmp_path / "hup"), env, log, tmp_path)
    wait_or_kill(job, lambda: read_markers(markers), 120, "a tile being made")
    send(job, signal.SIGHUP, group=True)
    assert_session_ends(job, 129, log)
    assert log_lines(log)[-1] == "arnisd: interrupted (SIGHUP)"
    for delay_s in (0.4, 0.9, 1.4, 2.0):
        log = tmp_path / f"early-{delay_s}.log"
        job = start_session(generate_args(tmp_path / f"early-{delay_s}"), env, log, tmp_path)
        time.sleep(delay_s)
        send(job, signal.SIGINT, group=True)
        assert_session_ends(job, 130, log)


def test_generate_killed_alone_leaves_nothing_running(tmp_path):
    """SIGKILL to the main process alone (no handler runs): its workers notice it is gone and
    stop their slots, the fork server and the resource tracker follow."""
    markers = tmp_path / "markers"
    markers.mkdir()
    log = tmp_path / "killed.log"
    job = start_session(generate_args(tmp_path / "killed"), arnisd_env(slow_env(markers, 0.5)),
                        log, tmp_path)
    wait_or_kill(job, lambda: read_markers(markers), 120, "a tile being made")
    send(job, signal.SIGKILL, group=False)
    assert_session_ends(job, -signal.SIGKILL, log)


SPAWNING_ARNISD = """
import multiprocessing.forkserver, sys
def refused():
    raise OSError("no Unix sockets here")
multiprocessing.forkserver.ensure_running = refused    # as in a sandbox: workers are spawned
from arnisd.cli import main
sys.exit(main(sys.argv[1:]))
"""


def children_of(pid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
            count += 1
    return count


@pytest.mark.parametrize("children", [2, 3], ids=["first-worker", "second-worker"])
def test_interrupt_while_spawned_workers_start_leaves_nothing_running(tmp_path, children):
    """Where the fork server cannot start, workers are spawned (as on macOS and Windows): a
    Ctrl-C the moment a worker process appears (its interpreter still starting; the first
    child is multiprocessing's resource tracker) is not lost, and gives no traceback from a
    worker either."""
    env = arnisd_env(slow_env(tmp_path, 0.5))
    log = tmp_path / "spawned.log"
    job = start_session([sys.executable, "-c", SPAWNING_ARNISD,
                         *generate_args(tmp_path / "spawned")[3:]], env, log, tmp_path)
    wait_or_kill(job, lambda: children_of(job.pid) >= children, 60, "a worker process",
                 interval_s=0.002)
    send(job, signal.SIGINT, group=True)
    assert_session_ends(job, 130, log)
    assert "spawning workers instead" in log.read_text()


def test_worker_daemon_interrupted_as_its_slots_start_leaves_nothing_running(tmp_path):
    """A worker daemon's slots are spawned as it starts: a Ctrl-C to its group the moment a
    slot appears (the first child is the resource tracker) stops the daemon (130 if it was not
    serving yet, else 0) without a traceback from a slot."""
    config = write_worker_config(tmp_path / "worker.toml", free_port(), "w0", slots=2)
    for attempt in range(2):
        log = tmp_path / f"worker-{attempt}.log"
        worker = start_session([sys.executable, "-m", "arnisd", "run", "--config", str(config)],
                               arnisd_env(), log, tmp_path)
        wait_or_kill(worker, lambda: children_of(worker.pid) >= 2 + attempt, 60, "a slot",
                     interval_s=0.002)
        send(worker, signal.SIGINT, group=True)
        assert_session_ends(worker, (130, 0), log)


def _many_regions(world: Path, out: Path, copies: int = 20) -> Path:
    """``world``'s region files laid side by side ``copies`` times: a preview that reads for
    seconds (the small world alone is read before a signal 0.3 s after its readers start)."""
    (out / "region").mkdir(parents=True)
    (out / "level.dat").write_bytes((world / "level.dat").read_bytes())
    regions = sorted((world / "region").glob("r.*.*.mca"))
    span = 1 + max(int(p.name.split(".")[1]) for p in regions)
    for copy in range(copies):
        for path in regions:
            _, rx, rz, _ = path.name.split(".")
            (out / "region" / f"r.{int(rx) + span * copy}.{rz}.mca").write_bytes(path.read_bytes())
    return out


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_preview_leaves_nothing_running(tmp_path, reference_worlds, signum,
                                                    exit_code):
    """`arnisd preview` reads region files in a pool of reader processes: interrupted the
    moment they start, or while they read, it stops them without a traceback (nor the hang a
    pool worker killed by Ctrl-C used to cause) and leaves no process."""
    args = [sys.executable, "-m", "arnisd", "preview", str(_many_regions(reference_worlds.folder(),
                                                                      tmp_path / "world")),
            "--workers", "2", "--output", str(tmp_path / "map.png")]
    for moment in ("a reader process appears", "a moment later"):
        log = tmp_path / f"{signum}-{len(moment)}.log"
        job = start_session(args, arnisd_env(), log, tmp_path)
        wait_or_kill(job, lambda: children_of(job.pid) >= 2, 60, moment, interval_s=0.002)
        if moment == "a moment later":
            time.sleep(0.3)
        send(job, signum, group=True)
        assert_session_ends(job, exit_code, log)
        assert log_lines(log)[-1] == f"arnisd: interrupted ({signal.Signals(signum).name})"


def test_daemons_and_waiting_commands_take_signals_without_tracebacks(tmp_path):
    """A coordinator daemon and a worker daemon mid-job, ``submit --wait`` and ``status
    --watch`` on them: each in its own session, stopped by Ctrl-C to its group (or SIGTERM,
    SIGHUP); each exits without a traceback and leaves no process."""
    markers = tmp_path / "markers"
    markers.mkdir()
    env = arnisd_env(slow_env(markers, 2.0))
    port, http_port = free_port(), free_port()
    worlds = tmp_path / "worlds"
    worlds.mkdir()
    config = write_coordinator_config(tmp_path / "coordinator.toml", port, BUNDLED_TENTH_BBOX,
                                      BUNDLED_EXTRACT, worlds / "first", 0.0025, http_port=http_port)
    worker_config = write_worker_config(tmp_path / "worker.toml", port, "w0", slots=2)
    arnisd = [sys.executable, "-m", "arnisd"]
    url = f"http://127.0.0.1:{http_port}"
    logs = {name: tmp_path / f"{name}.log" for name in ("coordinator", "worker", "submit",
                                                        "status")}
    coordinator = start_session([*arnisd, "run", "--config", str(config)], env,
                                logs["coordinator"], tmp_path)
    worker = start_session([*arnisd, "run", "--config", str(worker_config)], env, logs["worker"],
                           tmp_path)
    started = [coordinator, worker]
    try:
        wait_until(lambda: len(read_markers(markers)) >= 2, 120, "both slots making tiles")
        submit = start_session([*arnisd, "submit", "--coordinator", url, "--osm-file",
                                str(BUNDLED_EXTRACT), "--bbox", BUNDLED_TENTH_BBOX,
                                "--output", "second", "--wait", "--poll", "0.2"], env, logs["submit"], tmp_path)
        status = start_session([*arnisd, "status", "--coordinator", url, "--watch",
                                "--interval", "0.2"], env, logs["status"], tmp_path)
        started += [submit, status]
        wait_until(lambda: log_lines(logs["submit"]), 60, "the submitted job's id")
        wait_until(lambda: len(log_lines(logs["status"])) > 8, 60, "a few status refreshes")
        send(submit, signal.SIGINT, group=True)
        assert_session_ends(submit, 130, logs["submit"])
        job_id = log_lines(logs["submit"])[0]
        assert log_lines(logs["submit"])[1:] == [
            f"stopped waiting; job {job_id} goes on (arnisd cancel {job_id} ends it)",
            "arnisd: interrupted (SIGINT)"]
        send(status, signal.SIGTERM, group=True)
        assert_session_ends(status, 143, logs["status"])
        send(worker, signal.SIGINT, group=True)            # slots and all
        assert_session_ends(worker, 0, logs["worker"])
        send(coordinator, signal.SIGHUP, group=True)
        assert_session_ends(coordinator, 0, logs["coordinator"])
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
