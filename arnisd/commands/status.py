"""`arnisd status`: what a running coordinator is doing, from its HTTP API.

A human summary by default (job, progress bar, tiles by state, workers with their load,
throughput and ETA); ``--json`` prints the raw status document; ``--watch`` refreshes. An
unreachable coordinator is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
import time

from arnisd.cluster.wire_names import tiles_total_of
from arnisd.errors import UserError
from arnisd.service.client import ShimClient, add_connection_arguments, resolve_target

NAME = "status"
HELP = "show what a running coordinator is doing"
BAR_WIDTH = 30
CLEAR_SCREEN = "\x1b[H\x1b[2J"


def add_arguments(p) -> None:
    add_connection_arguments(p, token=False)
    p.add_argument("--json", action="store_true", help="print the raw status document")
    p.add_argument("--watch", action="store_true", help="refresh until interrupted")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="refresh period with --watch (default 2)")
    p.add_argument("--count", type=int, default=0, metavar="N",
                   help="with --watch, stop after N refreshes (default: never)")


def run(args) -> int:
    if args.interval <= 0:
        raise UserError(f"--interval {args.interval} must be positive")
    client = ShimClient(resolve_target(args), timeout_s=args.timeout)
    if not args.watch:
        print(_render(client.get("/coordinator/status"), args.json))
        return 0
    return _watch(client, args)


def _watch(client: ShimClient, args) -> int:
    tty = sys.stdout.isatty()
    shown = 0
    try:
        while True:
            try:
                text = _render(client.get("/coordinator/status"), args.json)
            except UserError as exc:
                if shown == 0:
                    raise                        # never reached it: say so and stop
                text = f"{exc} (retrying)"
            if tty and not args.json:
                sys.stdout.write(CLEAR_SCREEN)
            print(text, flush=True)
            shown += 1
            if args.count and shown >= args.count:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt as exc:
        if getattr(exc, "signal_name", "SIGINT") != "SIGINT":
            raise                                # SIGTERM, SIGHUP: exit 128 + the signal
        return 0                                 # Ctrl-C is how a watch ends


def _render(doc: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(doc)               # one line: --watch --json is one document per line
    return format_status(doc)


def format_status(doc: dict) -> str:
    """The human summary of a status document."""
    total = tiles_total_of(doc)
    done, leased = int(doc.get("completed") or 0), int(doc.get("in_progress") or 0)
    pending, failed = int(doc.get("pending") or 0), int(doc.get("failed") or 0)
    lines = [_job_line(doc)]
    if doc.get("error"):
        lines.append(f"error: {str(doc['error']).splitlines()[0]}")
    if total:
        fraction = done / total
        filled = round(fraction * BAR_WIDTH)
        lines.append(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {100 * fraction:5.1f}%  "
                     f"{done}/{total} tiles")
    lines.append(f"tiles: {done} done, {leased} leased, {pending} pending, {failed} failed")
    workers = doc.get("workers") or {}
    lines.append(f"workers: {workers.get('active', 0)} active, {workers.get('idle', 0)} idle")
    rows = doc.get("workers_detail") or doc.get("worker_rows") or []
    width = max([len(str(r.get("worker_id", "?"))) for r in rows] + [6])
    for row in rows:
        slots = int(row.get("slots") or 0)
        leases = row.get("leases", [])
        busy = len(leases) if isinstance(leases, list) else int(leases or 0)
        meter = "#" * min(busy, slots) + "." * max(slots - busy, 0) if slots <= 16 else ""
        extra = []
        if row.get("tiles_done") is not None:
            extra.append(f"{row['tiles_done']} tiles done")
        if isinstance(row.get("pace"), (int, float)):
            # 1.0: a slot as fast as the cost model expects; 0.5: half that
            extra.append(f"pace {row['pace']:.2f}"
                         + (" (benchmark)" if row.get("pace_from_benchmark") else ""))
        caps = row.get("caps") or {}
        if caps.get("os"):
            extra.append(str(caps["os"]))
        lines.append(f"  {str(row.get('worker_id', '?')):<{width}}  {busy}/{slots} slots "
                     f"[{meter}]  " + ", ".join(extra))
    lines.append(_speed_line(doc, total, done, failed))
    errors = [t for t in doc.get("tiles") or [] if t.get("state") == "failed"]
    for tile in errors[:3]:
        error = (tile.get("error") or "?").splitlines()[0]
        lines.append(f"failed {tile.get('tile')}: {error}")
    if len(errors) > 3:
        lines.append(f"... and {len(errors) - 3} more failed tiles (arnisd status --json)")
    return "\n".join(lines)


def _job_line(doc: dict) -> str:
    if not doc.get("job_id") and not tiles_total_of(doc):
        return "no job"
    parts = [f"job {doc.get('job_id', '?')}"]
    state = doc.get("job_state") or ("finished" if doc.get("finished") else None)
    if state:
        parts.append(str(state))
    if doc.get("output"):
        update = doc.get("job_kind") == "update"
        parts.append(f"update of {doc['output']}" if update else str(doc["output"]))
    return " · ".join(parts)


def _speed_line(doc: dict, total: int, done: int, failed: int) -> str:
    rate = doc.get("throughput_tiles_per_s", doc.get("tiles_per_s"))
    parts = [f"throughput {float(rate):.2f} tiles/s" if rate is not None else "throughput -"]
    eta = doc.get("eta_s")
    if total and done + failed >= total:
        parts.append("ETA done")
    else:
        if eta is None and rate:
            eta = (total - done - failed) / float(rate)
        parts.append(f"ETA {format_duration(eta)}")
    if doc.get("elapsed_s") is not None:
        parts.append(f"elapsed {format_duration(doc['elapsed_s'])}")
    return " · ".join(parts)


def format_duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, round(float(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
