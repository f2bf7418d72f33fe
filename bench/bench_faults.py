"""How fast the coordinator notices a dead or frozen worker (the README's fault figure).

A coordinator runs in this process with a job of long tiles; for each run a real worker
process (spawn) registers and takes a lease, then, at a random moment of the heartbeat cycle,
gets SIGKILL (the process is gone: its TCP connection closes) or SIGSTOP (frozen: the
connection stays up, only the heartbeats stop). The detection time is from the signal to the
coordinator dropping the worker and putting its tile back in the queue. Median (and min/max)
over runs, for each heartbeat setting.

    python bench/bench_faults.py [--runs 10] [--setting 1.0x3 --setting 0.5x3]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def sleepy_generate(elements, projection, owned, settings):
    """A tile that takes a minute (the worker holds its lease the whole run)."""
    time.sleep(60)
    return []


def _coordinator(state: Path, interval_s: float, liveness: int):
    from arnisd.cluster.coordinator import Coordinator
    from arnisd.cluster.coordinator_config import CoordinatorConfig
    from arnisd.cluster.job_run import JobRun
    from arnisd.cluster.extracts import NoExtracts
    from arnisd.cluster.merger import Merger
    from arnisd.cluster.tiling import make_tiles
    from arnisd.geo.bbox import BBox
    from arnisd.world.settings import GenerationSettings

    bbox = BBox.parse("60.52,26.93,60.54,26.97")
    settings = GenerationSettings()
    tiles = make_tiles(bbox, settings, 0.001)           # ~800 tiles: never runs out
    config = CoordinatorConfig(heartbeat_interval_s=interval_s, liveness=liveness, fsync=False,
                                 max_lost=10 ** 6)
    coordinator = Coordinator(config=config)
    coordinator.start_job(JobRun("bench", tiles, {"bbox": bbox.as_dict(), "scale": 1.0,
                                                  "settings": settings.as_dict()},
                                 settings, Merger(tiles, state / "state", state / "world",
                                                  fsync=False),
                                 NoExtracts(), config))
    endpoint = coordinator.bind()
    thread = threading.Thread(target=coordinator.run_job, daemon=True)
    thread.start()
    return coordinator, endpoint, thread


def _holding(coordinator, worker_id: str) -> bool:
    with coordinator._lock:
        return any(w.worker_id == worker_id and w.leases for w in coordinator.workers.values())


def _present(coordinator, worker_id: str) -> bool:
    with coordinator._lock:
        return any(w.worker_id == worker_id for w in coordinator.workers.values())


def measure(coordinator, endpoint: str, how: str, run: int, interval_s: float,
            liveness: int) -> float:
    from arnisd.cluster.slots import SPAWN
    from arnisd.cluster.worker_process import run_worker_process
    from arnisd.cluster.worker_config import WorkerConfig
    worker_id = f"bench-{how}-{run}"
    settings = WorkerConfig(coordinator=endpoint, worker_id=worker_id, slots=1,
                              generator="bench_faults:sleepy_generate",
                              heartbeat_interval_s=interval_s, liveness=liveness)
    process = SPAWN.Process(target=run_worker_process, args=(settings,))
    process.start()
    deadline = time.monotonic() + 60
    while not _holding(coordinator, worker_id):
        if time.monotonic() > deadline:
            raise RuntimeError("the worker never took a lease")
        time.sleep(0.01)
    time.sleep(random.uniform(0, interval_s) + interval_s)    # a random phase of the cycle
    signalled = time.monotonic()
    os.kill(process.pid, signal.SIGKILL if how == "SIGKILL" else signal.SIGSTOP)
    while _present(coordinator, worker_id):
        if time.monotonic() - signalled > 10 * interval_s * liveness:
            raise RuntimeError("the worker was never dropped")
        time.sleep(0.002)
    detected_s = time.monotonic() - signalled
    if how == "SIGSTOP":
        os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    return detected_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--setting", action="append", metavar="INTERVALxLIVENESS",
                        help="heartbeat interval (s) x liveness; repeatable (default 1.0x3)")
    args = parser.parse_args()
    settings = [(float(a), int(b)) for a, b in (s.split("x") for s in (args.setting or ["1.0x3"]))]
    if hasattr(os, "getloadavg"):
        print(f"load average before: {os.getloadavg()[0]:.2f} (other processes skew the figures)")
    for interval_s, liveness in settings:
        with tempfile.TemporaryDirectory() as tmp:
            coordinator, endpoint, thread = _coordinator(Path(tmp), interval_s, liveness)
            try:
                print(f"heartbeat {interval_s:g} s x liveness {liveness} "
                      f"(a silent peer is dead after {interval_s * liveness:g} s), "
                      f"{args.runs} runs each:")
                for how in ("SIGKILL", "SIGSTOP"):
                    times = [measure(coordinator, endpoint, how, run, interval_s, liveness)
                             for run in range(args.runs)]
                    print(f"  {how}: median {statistics.median(times):.2f} s "
                          f"(min {min(times):.2f}, max {max(times):.2f})")
            finally:
                coordinator.stop()
                thread.join(10)
                coordinator.close()


if __name__ == "__main__":
    main()
