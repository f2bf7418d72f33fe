"""A fake Overpass API for tests, and a converter from any OSM file to Overpass JSON.

``FakeOverpass`` is a ``fake_http.ScriptedHTTPServer`` (127.0.0.1, a free port, in a thread).
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
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import osmium

from fake_http import ScriptedHTTPServer

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
    # the file's own bounds: where its ways were cut (real Overpass ways are whole)
    with osmium.io.Reader(str(path), osmium.osm.NOTHING) as reader:
        box = reader.header().box()
    if box.valid():
        doc["bounds"] = {"minlat": box.bottom_left.lat, "minlon": box.bottom_left.lon,
                         "maxlat": box.top_right.lat, "maxlon": box.top_right.lon}
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


class FakeOverpass(ScriptedHTTPServer):
    """An Overpass stand-in: ``url``, ``requests``, ``queries``; ``script`` of actions per request.

    Actions: "ok", "gzip", "truncated", "invalid_json", "drop", "stall" (sleeps
    ``stall_s`` before answering), or ("status", code) / ("status", code, {header: value}).
    Once the script is used up, ``default`` is used (normally "ok").
    """

    method = "POST"
    status_body = "<html><body>status {status}</body></html>"
    status_content_type = "text/html"

    def __init__(self, body: bytes, script: Iterable = (), default="ok",
                 stall_s: float = 2.0) -> None:
        super().__init__(script, default, stall_s)
        self.body = body
        self.requests = 0
        self.queries: list[str] = []

    @property
    def url(self) -> str:
        return self.base_url + "/api/interpreter"

    def _next_action(self, query: str):
        with self._lock:
            self.requests += 1
            self.queries.append(query)
            return self._scripted_action()

    def _action_for(self, request):
        length = int(request.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(request.rfile.read(length).decode("utf-8"))
        return self._next_action((form.get("data") or [""])[0])

    def _answer(self, action, request) -> tuple[int, dict, bytes]:
        headers = {"Content-Type": "application/json"}
        if action == "truncated":
            doc = json.loads(self.body)
            doc["elements"] = doc["elements"][: len(doc["elements"]) // 3]
            doc["remark"] = TRUNCATION_REMARK
            return 200, headers, json.dumps(doc).encode("utf-8")
        if action == "invalid_json":
            return 200, headers, self.body[: len(self.body) // 2]
        if action == "gzip":
            return 200, {**headers, "Content-Encoding": "gzip"}, gzip.compress(self.body)
        if action == "ok":
            return 200, headers, self.body
        raise ValueError(f"unknown fake Overpass action {action!r}")
