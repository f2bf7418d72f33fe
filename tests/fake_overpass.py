"""A fake Overpass API for tests, and a converter from any OSM file to Overpass JSON.

``FakeOverpass`` is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a thread.
It answers POSTed queries with a fixed Overpass JSON body, or with whatever its script says for
each request in turn: an HTTP status (with headers such as Retry-After), a 200 whose ``remark``
says the query timed out, invalid JSON, a gzip-encoded answer, a stall, or a connection dropped
without an answer. It counts requests and keeps the queries it received.

``osm_file_to_overpass_json`` writes the objects of an OSM file as Overpass prints them
(nodes, ways, relations), or shuffled / reversed to mimic other output orders.
"""

from __future__ import annotations

import gzip
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import osmium

TRUNCATION_REMARK = ('runtime error: Query timed out in "query" at line 3 after 181 seconds.')


def osm_file_to_overpass_json(path: Path | str, order: str = "overpass", seed: int = 0,
                              remark: str | None = None) -> bytes:
    """The objects of an OSM file as an Overpass JSON answer.

    ``order``: "overpass" (nodes, ways, relations, each by id), "reversed" (relations, ways,
    nodes) or "shuffled" (random, from ``seed``).
    """
    nodes, ways, relations = [], [], []
    for obj in osmium.FileProcessor(str(path)):
        kind = obj.type_str()
        item: dict = {"type": {"n": "node", "w": "way", "r": "relation"}[kind], "id": obj.id}
        if kind == "n":
            if not obj.location.valid():
                continue
            item["lat"] = obj.location.lat
            item["lon"] = obj.location.lon
            target = nodes
        elif kind == "w":
            item["nodes"] = [ref.ref for ref in obj.nodes]
            target = ways
        else:
            item["members"] = [{"type": {"n": "node", "w": "way", "r": "relation"}[m.type],
                                "ref": m.ref, "role": m.role} for m in obj.members]
            target = relations
        if len(obj.tags):
            item["tags"] = dict(obj.tags)
        target.append(item)
    elements = nodes + ways + relations
    if order == "reversed":
        elements = relations + ways + nodes
    elif order == "shuffled":
        random.Random(seed).shuffle(elements)
    elif order != "overpass":
        raise ValueError(f"unknown order {order!r}")
    doc: dict = {"version": 0.6, "generator": "fake Overpass", "elements": elements}
    if remark is not None:
        doc["remark"] = remark
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def element_digest(elements: Iterable) -> list[tuple]:
    """Comparable summary of elements: identity, kind, tags, node ids and exact geometry."""
    digest = []
    for e in elements:
        if e.kind == "area":
            geometry = tuple((p.outer.tobytes(), tuple(i.tobytes() for i in p.inners))
                             for p in e.polygons)
        else:
            geometry = (np.asarray(e.coords, dtype=np.int64).tobytes(),)
        digest.append((e.osm_type, e.osm_id, e.kind, tuple(e.tags.items()), e.node_ids, geometry))
    return digest


class FakeOverpass:
    """An Overpass stand-in: ``url``, ``requests``, ``queries``; ``script`` of actions per request.

    Actions: "ok", "gzip", "truncated", "invalid_json", "drop", "stall" (sleeps
    ``stall_s`` before answering), or ("status", code) / ("status", code, {header: value}).
    Once the script is used up, ``default`` is used (normally "ok").
    """

    def __init__(self, body: bytes, script: Iterable = (), default="ok",
                 stall_s: float = 2.0) -> None:
        self.body = body
        self.script = list(script)
        self.default = default
        self.stall_s = stall_s
        self.requests = 0
        self.queries: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/interpreter"

    def start(self) -> "FakeOverpass":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeOverpass":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _next_action(self, query: str):
        with self._lock:
            self.requests += 1
            self.queries.append(query)
            return self.script.pop(0) if self.script else self.default

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8"))
                action = fake._next_action((form.get("data") or [""])[0])
                if action == "drop":
                    self.close_connection = True
                    return  # no status line at all: the client sees the connection close
                if action == "stall":
                    time.sleep(fake.stall_s)
                    action = "ok"
                headers = {}
                if isinstance(action, tuple) and action[0] == "status":
                    status = action[1]
                    headers = dict(action[2]) if len(action) > 2 else {}
                    body = f"<html><body>status {status}</body></html>".encode()
                    headers.setdefault("Content-Type", "text/html")
                elif action == "truncated":
                    status = 200
                    doc = json.loads(fake.body)
                    doc["elements"] = doc["elements"][: len(doc["elements"]) // 3]
                    doc["remark"] = TRUNCATION_REMARK
                    body = json.dumps(doc).encode("utf-8")
                elif action == "invalid_json":
                    status, body = 200, fake.body[: len(fake.body) // 2]
                elif action == "gzip":
                    status, body = 200, gzip.compress(fake.body)
                    headers["Content-Encoding"] = "gzip"
                elif action == "ok":
                    status, body = 200, fake.body
                else:
                    raise ValueError(f"unknown fake Overpass action {action!r}")
                headers.setdefault("Content-Type", "application/json")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

        return Handler
