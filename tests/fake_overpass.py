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
import re
import threading
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


class CuttingOverpass(FakeOverpass):
    """A fake Overpass that answers each query with what an OSM file holds in the query's
    box, the way Overpass's ``nwr[key](box); (._;>;);`` does: the nodes inside the box and
    the ways with a node inside it, tagged with a queried key, the relations with such a
    member, then all their nodes and member ways whole. Every answer declares the file's
    bounds (where its ways were cut). ``boxes`` lists the boxes asked, in order."""

    _BOX = re.compile(r"\((-?[\d.]+),(-?[\d.]+),(-?[\d.]+),(-?[\d.]+)\)")

    def __init__(self, path: Path | str, script: Iterable = (), default="ok") -> None:
        doc = json.loads(osm_file_to_overpass_json(path))
        super().__init__(b"{}", script, default)
        self._bounds = doc.get("bounds")
        self._by_key = {(e["type"], e["id"]): e for e in doc["elements"]}
        self._where = {e["id"]: (round(e["lat"] * 1e7), round(e["lon"] * 1e7))
                       for e in doc["elements"] if e["type"] == "node"}
        self._queried = threading.local()
        self.boxes: list[tuple[int, int, int, int]] = []

    def _next_action(self, query: str):
        self._queried.query = query
        return super()._next_action(query)

    def _answer(self, action, request) -> tuple[int, dict, bytes]:
        if action != "ok":
            return super()._answer(action, request)
        from arnisd.osm.overpass import QUERY_KEYS
        box = tuple(round(float(v) * 1e7) for v in self._BOX.search(self._queried.query).groups())
        with self._lock:
            self.boxes.append(box)

        def inside(node_id: int) -> bool:
            where = self._where.get(node_id)
            return where is not None and box[0] <= where[0] <= box[2] \
                and box[1] <= where[1] <= box[3]

        def queried(e: dict) -> bool:
            return any(k in QUERY_KEYS for k in (e.get("tags") or {}))

        reaching = {k for k, e in self._by_key.items() if k[0] == "node" and inside(k[1])}
        reaching |= {k for k, e in self._by_key.items()
                     if k[0] == "way" and any(inside(n) for n in e["nodes"])}
        found = {k for k in reaching if queried(self._by_key[k])}
        found |= {k for k, e in self._by_key.items() if k[0] == "relation" and queried(e)
                  and any((m["type"], m["ref"]) in reaching for m in e["members"])}
        answer = set(found)
        for key in found:                    # (._;>;): members, and the nodes of ways
            element = self._by_key[key]
            if key[0] == "relation":
                answer |= {(m["type"], m["ref"]) for m in element["members"]
                           if (m["type"], m["ref"]) in self._by_key}
        for key in list(answer):
            if key[0] == "way":
                answer |= {("node", n) for n in self._by_key[key]["nodes"]
                           if ("node", n) in self._by_key}
        rank = {"node": 0, "way": 1, "relation": 2}
        doc = {"version": 0.6, "generator": "cutting fake Overpass",
               "elements": [self._by_key[k] for k in sorted(answer, key=lambda k: (rank[k[0]], k[1]))]}
        if self._bounds is not None:
            doc["bounds"] = self._bounds
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode("utf-8")
