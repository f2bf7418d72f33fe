"""Prometheus text format 0.0.4 for the job API's ``/metrics``: names, help texts, rendering.

A provider's ``metrics()`` gives {name without the ``arnisd_`` prefix: number, or a list of
(labels dict, number)}; names ending ``_total`` are counters, others gauges.
"""

from __future__ import annotations

import logging
import math
import re

log = logging.getLogger("arnisd.service.prometheus")

METRIC_PREFIX = "arnisd_"
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

METRIC_HELP = {
    "tiles_completed_total": "Tiles committed to the world, over all jobs.",
    "tiles_failed_total": "Tiles that failed for good, over all jobs.",
    "tile_leases_total": "Tile leases handed to workers (attempts), over all jobs.",
    "tile_retries_total": "Tile leases that ended without a result and were re-queued.",
    "chunks_merged_total": "Minecraft chunks merged into region files.",
    "regions_written_total": "Region files written.",
    "result_bytes_received_total": "Bytes of chunk results received from workers.",
    "messages_received_total": "ZeroMQ messages received from workers.",
    "protocol_errors_total": "Frames from workers rejected as malformed.",
    "jobs_submitted_total": "Jobs accepted.",
    "jobs_completed_total": "Jobs finished with every tile committed.",
    "jobs_failed_total": "Jobs finished with failed tiles.",
    "jobs_cancelled_total": "Jobs cancelled.",
    "job_tiles": "Tiles of the current job by state.",
    "jobs": "Jobs by state.",
    "workers": "Registered workers by state (active: holding a lease).",
    "worker_slots": "Tile slots over all registered workers.",
    "uptime_seconds": "Seconds since the coordinator started.",
    "job_elapsed_seconds": "Seconds since the current job started.",
    "ready": "1 when the coordinator accepts work.",
}


def metrics_from_status(status: dict) -> dict:
    """Gauges every provider can show from the status document alone."""
    workers = status.get("workers") or {}
    return {
        "job_tiles": [({"state": "pending"}, status.get("pending", 0)),
                      ({"state": "in_progress"}, status.get("in_progress", 0)),
                      ({"state": "completed"}, status.get("completed", 0)),
                      ({"state": "failed"}, status.get("failed", 0))],
        "workers": [({"state": "active"}, workers.get("active", 0)),
                    ({"state": "idle"}, workers.get("idle", 0))],
    }


def render_metrics(metrics: dict) -> str:
    """Prometheus text format 0.0.4 for ``metrics`` (see ``StatusProvider.metrics``)."""
    lines = []
    for name in sorted(metrics):
        full = name if name.startswith(METRIC_PREFIX) else METRIC_PREFIX + name
        if not _METRIC_NAME.match(full):
            log.warning("metric %r has an invalid name; left out", name)
            continue
        value = metrics[name]
        samples = value if isinstance(value, list) else [({}, value)]
        rendered = [_sample_line(full, labels, v) for labels, v in samples]
        rendered = [line for line in rendered if line is not None]
        if not rendered:
            continue
        short = full[len(METRIC_PREFIX):]
        help_text = METRIC_HELP.get(short, f"arnisd {short.replace('_', ' ')}.")
        kind = "counter" if full.endswith("_total") else "gauge"
        lines.append(f"# HELP {full} {_escape_help(help_text)}")
        lines.append(f"# TYPE {full} {kind}")
        lines.extend(rendered)
    return "\n".join(lines) + "\n"


def _sample_line(name: str, labels: dict, value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, (int, float)):
        log.warning("metric %s has a non-numeric value %r; left out", name, value)
        return None
    label_text = ""
    if labels:
        parts = []
        for key in sorted(labels):
            if not _LABEL_NAME.match(key):
                log.warning("metric %s has an invalid label %r; left out", name, key)
                return None
            parts.append(f'{key}="{_escape_label(str(labels[key]))}"')
        label_text = "{" + ",".join(parts) + "}"
    return f"{name}{label_text} {_format_number(value)}"


def _format_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
