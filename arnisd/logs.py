"""Log lines of arnisd: one JSON object per line when not on a terminal, readable text on one.

``configure_logging`` sets up structlog (the progress lines of ``arnisd generate``).
``configure_daemon_logging(log_format, log_level)`` routes the standard ``logging`` records
(the cluster's modules log through it) and structlog to stderr in the same format, so
``journalctl -o cat`` or a log shipper gets one JSON object per line::

    {"timestamp": "2025-01-01T12:00:00.123Z", "level": "info", "logger": "arnisd.cluster.coordinator",
     "event": "worker w1 registered", "pid": 1234}

``configure_child_logging`` makes a daemon's child process (a worker's slot) log the same way.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: timestamp (UTC), level, logger, event, pid, extras, error."""

    def format(self, record: logging.LogRecord) -> str:
        created = time.gmtime(record.created)
        doc = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", created) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "pid": record.process or os.getpid(),
        }
        for key, value in vars(record).items():        # logging.info(..., extra={...})
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def uses_json(log_format: str, stream=None) -> bool:
    stream = stream or sys.stderr
    return log_format == "json" or (log_format == "auto" and not _isatty(stream))


#: Set by ``configure_daemon_logging`` so that child processes (a worker's slots, started
#: with ``spawn``) can log the same way with ``configure_child_logging``.
CHILD_FORMAT_ENV = "ARNISD_DAEMON_LOG_FORMAT"
CHILD_LEVEL_ENV = "ARNISD_DAEMON_LOG_LEVEL"


def configure_child_logging() -> bool:
    """In a process started by a daemon: log as the daemon does (JSON lines off a terminal),
    and route ``warnings`` through logging. False (nothing changed) outside a daemon."""
    log_format = os.environ.get(CHILD_FORMAT_ENV)
    if not log_format:
        return False
    configure_daemon_logging(log_format, os.environ.get(CHILD_LEVEL_ENV, "info"))
    return True


def configure_daemon_logging(log_format: str = "auto", log_level: str = "info", stream=None) -> None:
    """Replace the root logger's handlers with one writing ``log_format`` lines to stderr;
    Python warnings become log records too. Child processes started afterwards find the
    choice in their environment (``configure_child_logging``)."""
    os.environ[CHILD_FORMAT_ENV] = "json" if uses_json(log_format, stream or sys.stderr) else "console"
    os.environ[CHILD_LEVEL_ENV] = log_level
    logging.captureWarnings(True)
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if uses_json(log_format, stream):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, log_level.upper(), logging.INFO))
    configure_logging("json" if uses_json(log_format, stream) else "console", log_level)



def configure_logging(fmt: str = "auto", level: str = "info", quiet: bool = False) -> None:
    """Set up structlog once per process. ``fmt`` is "auto", "json" or "console"."""
    # imported here: a slot that is not configured never loads structlog
    import structlog
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    threshold = logging.WARNING if quiet else getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )

def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
