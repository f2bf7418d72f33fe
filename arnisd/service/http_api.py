"""The service's job API over HTTP: status JSON, jobs, health, Prometheus metrics, the live page.

A stdlib ``ThreadingHTTPServer`` on its own thread serves whatever implements
``StatusProvider`` (the coordinator, or a fake in tests). Routes::

    GET  /                    the live status page (static HTML + plain JS polling the JSON)
    GET  /coordinator/status  the documented status document (``?tiles=0`` leaves out tiles)
    GET  /jobs                {"jobs": [...]}
    GET  /jobs/ID             one job, with per-tile states and errors (404 if unknown)
    GET  /livez               200 while the process serves HTTP
    GET  /readyz              200 when the provider is ready, else 503
    GET  /metrics             Prometheus text format 0.0.4
    GET  /map.png             the running job's map so far, one image (404 when there is none)
    GET  /jobs/ID/map/tiles.json        where that job's map pyramid lies, in blocks
    GET  /jobs/ID/map/Z/X/Y.png         one 256 px tile of it (transparent while not drawn)
    GET  /static/NAME         the page's scripts and styles (Leaflet included), from the package
    POST /jobs                submit a job (JSON body) -> 201 {"job_id": ...}
    POST /jobs/ID/cancel      cancel a job -> 200, 404 unknown, 409 already finished
    POST /coordinator/bench   {"seconds": S}: every connected worker runs the calibration tile
                              -> 200 {"workers": [...]}, 409 while a job runs

Unknown paths get 404, known paths with another method 405. When a token is configured, the
POST routes need ``Authorization: Bearer <token>`` (compared in constant time), else 401.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

from arnisd.cluster.bench_round import MAX_SECONDS as MAX_BENCH_SECONDS
from arnisd.cluster.bench_round import BenchRefused
from arnisd.cluster.wire_names import TILES_TOTAL
from arnisd.errors import UserError
from arnisd.service.map_files import (MapRequestError, blank_tile_png, parse_tile_path,
                                      read_map_file, read_pyramid_description, static_asset,
                                      tile_file, tile_in_pyramid)
from arnisd.service.prometheus import metrics_from_status, render_metrics

log = logging.getLogger("arnisd.service.http_api")

MAX_BODY_BYTES = 1 << 20


@runtime_checkable
class StatusProvider(Protocol):
    """What the job API needs from a coordinator. Every method is called from HTTP threads.

    ``status()``: the ``/coordinator/status`` document for the current job (or the last one,
    or zeros when there is none): exactly ``total_chunks`` (tiles of the job), ``completed``,
    ``in_progress``, ``pending``, ``failed``, ``workers: {active, idle}``, then optional
    extras that the page and ``arnisd status`` show when present: ``job_id``, ``job_state``,
    ``error`` (why the job shown failed), ``output``, ``job_kind`` (generate or update),
    ``bbox`` {min_lat, min_lng, max_lat, max_lng}, ``elapsed_s``,
    ``throughput_tiles_per_s``, ``eta_s``, ``chunks_merged``, ``workers_detail`` (rows of
    {worker_id, slots, leases: [tile ids], tiles_done, caps, pace (its slots' speed against the
    cost model: 1.0 as estimated), pace_from_benchmark, last_seen_s_ago}), ``tiles``
    (rows of {tile, state: pending|leased|committed|failed, attempt (its try count), lease
    (the fencing number of its current or last lease), error, owned_blocks:
    [x0, z0, x1, z1], bbox}).

    ``jobs()``: one summary row per job, oldest first ({job_id, state: queued|running|done|
    failed|cancelled, kind: generate|update, output, total_chunks, completed, failed,
    submitted_at, ...}).
    ``job(job_id)``: that job's document with ``tiles`` (states and errors), or None.
    ``metrics()``: {name without the ``arnisd_`` prefix: number, or a list of (labels dict,
    number)}; names ending ``_total`` are counters, others gauges; base units (seconds,
    bytes) in the name; no per-tile labels.
    ``ready()``: accepting work (socket bound, journal open).
    ``submit(job)``: queue a job request (see ``arnisd.service.job_request``), return its id;
    raise ``ValueError`` for a bad request (answered 400).
    ``cancel(job_id)``: True if the job was queued or running and is now cancelled.
    ``map_directory(job_id)``: the directory holding that job's map (None: the running job) in
    the layout of ``arnisd.map_tiles`` plus ``overview.png``, or None when it has no map.
    ``bench(seconds)``: ``{"workers": [rows]}`` of a benchmark round
    (``arnisd.cluster.bench_round``); raises ``BenchRefused`` while a job runs.
    """

    def status(self) -> dict: ...

    def jobs(self) -> list[dict]: ...

    def job(self, job_id: str) -> dict | None: ...

    def metrics(self) -> dict: ...

    def ready(self) -> bool: ...

    def submit(self, job: dict) -> str: ...

    def cancel(self, job_id: str) -> bool: ...

    def map_directory(self, job_id: str | None = None) -> Path | None: ...

    def bench(self, seconds: float) -> dict: ...


def _json_safe(value):
    """``value`` with non-finite floats (an unknown ETA) turned into null, as JSON allows."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# --- the page ----------------------------------------------------------------------------------

def status_page_html() -> bytes:
    """The live status page (``arnisd/service/status_page.html``)."""
    return resources.files("arnisd.service").joinpath("status_page.html").read_bytes()


# --- the server --------------------------------------------------------------------------------

class HttpApi:
    """A running job API server: ``port``, ``url``, ``close()`` (also a context manager)."""

    def __init__(self, server: "_Server", thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread
        self.host, self.port = server.server_address[:2]

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(5.0)
        self.server.server_close()

    def __enter__(self) -> "HttpApi":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, provider: StatusProvider, token: str | None) -> None:
        self.provider = provider
        self.token = token
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


def start_http_api(provider: StatusProvider, host: str = "127.0.0.1", port: int = 0,
                    token: str | None = None) -> tuple[HttpApi, int]:
    """Serve ``provider`` on ``host:port`` (0: a free port) from a daemon thread.

    Returns the running server and the port it got. A port that cannot be bound is a
    ``UserError`` naming it.
    """
    try:
        server = _Server((host, port), provider, token)
    except OSError as exc:
        raise UserError(f"cannot serve HTTP on {host}:{port}: {exc.strerror or exc}") from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="arnisd-http-api", daemon=True)
    thread.start()
    api = HttpApi(server, thread)
    log.info("HTTP job API on %s", api.url)
    return api, api.port


def start_status_server(provider, host: str = "127.0.0.1", port: int = 0,
                        token: str | None = None, map_dir: Path | None = None) -> HttpApi:
    """Like ``start_http_api`` but returns only the server; ``provider`` may also be a bare
    status function (``coordinator.status_snapshot``), wrapped by ``SnapshotProvider`` (with
    the run's map in ``map_dir``)."""
    if callable(provider) and not isinstance(provider, StatusProvider):
        provider = SnapshotProvider(provider, map_dir=map_dir)
    api, _ = start_http_api(provider, host, port, token)
    return api


class SnapshotProvider:
    """A read-only provider for one job from a status function (a local ``generate`` run)."""

    def __init__(self, status_fn, job_id: str = "local", map_dir: Path | None = None) -> None:
        self.status_fn = status_fn
        self.job_id = job_id
        self.map_dir = map_dir

    def map_directory(self, job_id: str | None = None) -> Path | None:
        """The run's map folder (``arnisd.map_mosaic``), None if it draws none."""
        return self.map_dir if job_id in (None, self.job_id) else None

    def status(self) -> dict:
        doc = dict(self.status_fn())
        doc.setdefault("job_id", self.job_id)
        return doc

    def jobs(self) -> list[dict]:
        doc = self.status()
        row = {k: doc.get(k) for k in ("job_id", TILES_TOTAL, "completed", "failed")}
        row["state"] = doc.get("job_state") or ("done" if doc.get("finished") else "running")
        return [row]

    def job(self, job_id: str) -> dict | None:
        doc = self.status()
        return doc if job_id == doc.get("job_id") else None

    def metrics(self) -> dict:
        doc = self.status()
        return {"tiles_completed_total": doc.get("completed", 0),
                "tiles_failed_total": doc.get("failed", 0),
                "chunks_merged_total": doc.get("chunks_merged"),
                "job_elapsed_seconds": doc.get("elapsed_s")}

    def ready(self) -> bool:
        return True

    def submit(self, job: dict) -> str:
        raise NotImplementedError("this run takes no further jobs (start `arnisd run` with a "
                                  "coordinator config to submit jobs)")

    def cancel(self, job_id: str) -> bool:
        raise NotImplementedError("this run cannot be cancelled over HTTP (press Ctrl-C)")

    def bench(self, seconds: float) -> dict:
        raise NotImplementedError("this run takes no benchmark (its workers are its own)")


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the provider; every answer is JSON except the page and metrics."""

    server: _Server
    server_version = "arnisd"
    protocol_version = "HTTP/1.1"
    timeout = 30          # seconds a client may stay silent (mid-request or idle keep-alive)

    GET_ROUTES = ("/", "/coordinator/status", "/jobs", "/livez", "/readyz", "/metrics")

    def log_message(self, fmt: str, *args) -> None:  # quiet: the daemon's logs are structured
        log.debug("http %s %s", self.address_string(), fmt % args)

    # --- dispatch ---

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        route, allowed, arg = self._route(path)
        if route is None:
            self._drain_body()
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such path: {parts.path}"})
            return
        if method == "HEAD" and "GET" in allowed:
            method = "GET"                      # same answer, no body (see _send)
        if method not in allowed:
            self._drain_body()
            self._json(HTTPStatus.METHOD_NOT_ALLOWED,
                       {"error": f"{method} is not allowed on {parts.path}"},
                       headers={"Allow": ", ".join(allowed)})
            return
        # the page (its status polls say page=1) and the map's files are someone watching;
        # `arnisd status` and other scripts asking for the status are not
        if method == "GET" and (route in (self._page, self._overview, self._map_description,
                                          self._map_tile)
                                or (route == self._status and "page" in query)):
            self._watched()
        try:
            route(method, arg, query)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a provider bug must not kill the server
            log.exception("HTTP %s %s failed", method, parts.path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {exc}"})

    def _watched(self) -> None:
        """Someone looks at the running job: its map is kept up to date while they do."""
        try:
            map_dir = self.server.provider.map_directory(None)
        except Exception:                 # a provider without maps, or between jobs
            return
        if map_dir is not None:
            from arnisd.map_mosaic import mark_viewed
            mark_viewed(map_dir)

    def _route(self, path: str):
        """(handler, allowed methods, path argument) or (None, (), None)."""
        fixed = {
            "/": (self._page, ("GET",)),
            "/coordinator/status": (self._status, ("GET",)),
            "/coordinator/bench": (self._bench, ("POST",)),
            "/jobs": (self._jobs, ("GET", "POST")),
            "/livez": (self._livez, ("GET",)),
            "/readyz": (self._readyz, ("GET",)),
            "/metrics": (self._metrics, ("GET",)),
        }
        if path in fixed:
            handler, allowed = fixed[path]
            return handler, allowed, None
        segments = path.split("/")
        if path == "/map.png":
            return self._overview, ("GET",), None
        if len(segments) >= 3 and segments[1] == "static":
            return self._static, ("GET",), segments[2:]
        if len(segments) >= 5 and segments[1] == "jobs" and segments[2] and segments[3] == "map":
            if segments[4:] == ["tiles.json"]:
                return self._map_description, ("GET",), unquote(segments[2])
            if len(segments) == 7:
                return self._map_tile, ("GET",), (unquote(segments[2]), segments[4:])
            return None, (), None
        if len(segments) == 3 and segments[1] == "jobs" and segments[2]:
            return self._one_job, ("GET",), unquote(segments[2])
        if len(segments) == 4 and segments[1] == "jobs" and segments[2] and segments[3] == "cancel":
            return self._cancel, ("POST",), unquote(segments[2])
        return None, (), None

    # --- handlers ---

    def _page(self, method, arg, query) -> None:
        try:
            body = status_page_html()
        except (FileNotFoundError, ModuleNotFoundError):
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                       {"error": "status_page.html is missing from this installation"})
            return
        self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")

    def _static(self, method, parts, query) -> None:
        asset = static_asset(parts)
        if asset is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such file: static/{'/'.join(parts)}"})
        else:
            self._send(HTTPStatus.OK, *asset)

    def _overview(self, method, arg, query) -> None:
        map_dir = self.server.provider.map_directory(None)
        body = read_map_file(map_dir / "overview.png") if map_dir is not None else None
        if body is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": "no map: no job is running, or its map "
                                                       "has nothing drawn yet"})
        else:
            self._send(HTTPStatus.OK, body, "image/png")

    def _map_description(self, method, job_id, query) -> None:
        map_dir = self.server.provider.map_directory(job_id)
        description = read_pyramid_description(map_dir) if map_dir is not None else None
        if description is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no map of job {job_id}"})
        else:
            self._json(HTTPStatus.OK, description)

    def _map_tile(self, method, arg, query) -> None:
        job_id, (z_text, x_text, y_file) = arg
        try:
            address = parse_tile_path(z_text, x_text, y_file)
        except MapRequestError as exc:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(exc)})
            return
        map_dir = self.server.provider.map_directory(job_id)
        description = read_pyramid_description(map_dir) if map_dir is not None else None
        if description is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no map of job {job_id}"})
            return
        if not tile_in_pyramid(address, description):
            self._json(HTTPStatus.NOT_FOUND, {"error": "tile outside the map: "
                                                       f"{z_text}/{x_text}/{y_file}"})
            return
        body = read_map_file(tile_file(map_dir, address))
        if body is None:          # inside the map, not drawn yet
            self._send(HTTPStatus.OK, blank_tile_png(), "image/png",
                       headers={"X-Arnisd-Map-Tile": "not-drawn"})
        else:
            self._send(HTTPStatus.OK, body, "image/png", headers={"X-Arnisd-Map-Tile": "drawn"})

    def _status(self, method, arg, query) -> None:
        doc = dict(self.server.provider.status())
        if query.get("tiles", ["1"])[-1] in ("0", "false", "no"):
            doc.pop("tiles", None)
        self._json(HTTPStatus.OK, doc)

    def _jobs(self, method, arg, query) -> None:
        if method == "GET":
            self._json(HTTPStatus.OK, {"jobs": list(self.server.provider.jobs())})
            return
        if not self._authorized():
            return
        body = self._read_json()
        if body is None:
            return
        try:
            job_id = self.server.provider.submit(body)
        except NotImplementedError as exc:
            self._json(HTTPStatus.NOT_IMPLEMENTED, {"error": str(exc) or "submission not supported"})
            return
        except ValueError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._json(HTTPStatus.CREATED, {"job_id": job_id},
                   headers={"Location": f"/jobs/{job_id}"})

    def _one_job(self, method, job_id, query) -> None:
        doc = self.server.provider.job(job_id)
        if doc is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such job: {job_id}"})
        else:
            self._json(HTTPStatus.OK, doc)

    def _cancel(self, method, job_id, query) -> None:
        if not self._authorized():
            return
        self._drain_body()
        provider = self.server.provider
        try:
            cancelled = provider.cancel(job_id)
        except NotImplementedError as exc:
            self._json(HTTPStatus.NOT_IMPLEMENTED, {"error": str(exc) or "cancel not supported"})
            return
        if cancelled:
            self._json(HTTPStatus.OK, {"job_id": job_id, "cancelled": True})
        elif provider.job(job_id) is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such job: {job_id}"})
        else:
            self._json(HTTPStatus.CONFLICT, {"error": f"job {job_id} has already finished",
                                             "job_id": job_id, "cancelled": False})

    def _bench(self, method, arg, query) -> None:
        if not self._authorized():
            return
        body = self._read_json()
        if body is None:
            return
        seconds = body.get("seconds", 3.0) if isinstance(body, dict) else None
        if type(seconds) not in (int, float) or not 0 < seconds <= MAX_BENCH_SECONDS:
            self._json(HTTPStatus.BAD_REQUEST,
                       {"error": f"seconds must be a number in (0, {MAX_BENCH_SECONDS:g}]"})
            return
        try:
            self._json(HTTPStatus.OK, self.server.provider.bench(float(seconds)))
        except NotImplementedError as exc:
            self._json(HTTPStatus.NOT_IMPLEMENTED, {"error": str(exc) or "no benchmark here"})
        except BenchRefused as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc)})

    def _livez(self, method, arg, query) -> None:
        self._json(HTTPStatus.OK, {"live": True})

    def _readyz(self, method, arg, query) -> None:
        ready = bool(self.server.provider.ready())
        self._json(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE, {"ready": ready})

    def _metrics(self, method, arg, query) -> None:
        provider = self.server.provider
        metrics = metrics_from_status(provider.status())
        metrics["ready"] = bool(provider.ready())
        metrics.update(provider.metrics() or {})
        body = render_metrics(metrics).encode()
        self._send(HTTPStatus.OK, body, "text/plain; version=0.0.4; charset=utf-8")

    # --- helpers ---

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode("utf-8"), token.encode("utf-8"))
        if not ok:
            self._drain_body()
            self._json(HTTPStatus.UNAUTHORIZED, {"error": "a valid bearer token is required"},
                       headers={"WWW-Authenticate": 'Bearer realm="arnisd"'})
        return ok

    def _read_json(self):
        """The request body as JSON, or None after answering 400/411/413/415."""
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
            return None
        try:
            length = int(length_text)
        except ValueError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"})
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       {"error": f"body over {MAX_BODY_BYTES} bytes"})
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"body is not JSON: {exc}"})
            return None

    def _drain_body(self) -> None:
        """Read and drop a request body so the connection stays usable."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        elif length > MAX_BODY_BYTES:
            self.close_connection = True

    def _json(self, status: HTTPStatus, doc, headers: dict | None = None) -> None:
        body = json.dumps(_json_safe(doc), separators=(",", ":"), allow_nan=False,
                          default=str).encode("utf-8")
        self._send(status, body, "application/json", headers)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
