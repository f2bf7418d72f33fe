"""Convert an Overpass JSON answer into sorted OPL text that osmium can read.

Overpass returns ``{"elements": [...], "remark": ...}`` with objects in whatever order the
query printed them (often relations or ways before nodes). Osmium's area assembly needs nodes,
then ways, then relations, so this module sorts and de-duplicates the objects by (type, id)
and writes them as OPL, osmium's one-line-per-object text format. The reader then assembles
them exactly like a ``.osm.pbf``. A ``remark`` that reports a timeout or memory exhaustion
means the answer was cut short; that is an error, not data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_TRUNCATION_REMARK = re.compile(r"runtime error|timed? ?out|out of memory", re.IGNORECASE)
# OPL field text: printable ASCII except the separators; everything else is %hex% escaped.
_OPL_UNSAFE = re.compile(r"[^\x21-\x7e]|[,=@%]")
_MEMBER_LETTER = {"node": "n", "way": "w", "relation": "r"}
_E7 = 10_000_000


class OverpassJsonError(ValueError):
    """The bytes are not a usable Overpass JSON answer (invalid, not Overpass, truncated)."""


@dataclass(frozen=True, slots=True)
class OplDocument:
    """Sorted OPL text plus what the JSON said about its extent."""

    opl: bytes
    bounds: tuple[float, float, float, float] | None  # (min_lat, min_lng, max_lat, max_lng)
    object_count: int


def truncation_remark(doc: dict) -> str | None:
    """The ``remark`` of an answer if it says the answer was cut short, else None."""
    remark = doc.get("remark")
    if isinstance(remark, str) and _TRUNCATION_REMARK.search(remark):
        return " ".join(remark.split())
    return None


def load_overpass_json(data: bytes) -> dict:
    """Parse and validate an Overpass JSON answer; raise ``OverpassJsonError`` if unusable."""
    if not data.strip():
        raise OverpassJsonError("is empty")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OverpassJsonError(f"is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("elements"), list):
        raise OverpassJsonError('is not Overpass JSON (no "elements" list)')
    remark = truncation_remark(doc)
    if remark is not None:
        raise OverpassJsonError(f"was cut short by Overpass: {remark}")
    return doc


def overpass_doc_to_opl(doc: dict) -> OplDocument:
    """Convert a validated Overpass answer (see ``load_overpass_json``) to sorted OPL."""
    nodes: dict[int, dict] = {}
    ways: dict[int, dict] = {}
    relations: dict[int, dict] = {}
    by_type = {"node": nodes, "way": ways, "relation": relations}
    for element in doc["elements"]:
        if not isinstance(element, dict):
            raise OverpassJsonError("has an element that is not a JSON object")
        target = by_type.get(element.get("type"))
        if target is None:  # Overpass "area", "count", ... objects are not OSM data
            continue
        try:
            target[int(element["id"])] = element
        except (KeyError, TypeError, ValueError):
            raise OverpassJsonError(f"has a {element.get('type')} without a usable id") from None
    try:
        lines = [_node_line(i, nodes[i]) for i in sorted(nodes)]
        lines += [_way_line(i, ways[i]) for i in sorted(ways)]
        lines += [_relation_line(i, relations[i]) for i in sorted(relations)]
    except (KeyError, TypeError, ValueError) as exc:
        raise OverpassJsonError(f"has a malformed element ({type(exc).__name__}: {exc})") from None
    opl = "".join(line for line in lines if line).encode("utf-8")
    return OplDocument(opl=opl, bounds=_bounds(doc, nodes), object_count=len(nodes) + len(ways) + len(relations))


def _escape(text: str) -> str:
    return _OPL_UNSAFE.sub(lambda m: f"%{ord(m.group()):x}%", text)


def _tags_field(element: dict) -> str:
    tags = element.get("tags") or {}
    return ",".join(f"{_escape(str(k))}={_escape(str(v))}" for k, v in tags.items())


def _e7_text(degrees: float) -> str:
    """Degrees as exact fixed-point decimal text (osmium keeps 7 decimals)."""
    value = round(float(degrees) * _E7)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), _E7)
    return f"{sign}{whole}.{frac:07d}"


def _node_line(node_id: int, node: dict) -> str:
    if "lat" not in node or "lon" not in node:  # "out ids"/"out skel" without geometry
        return ""
    return f"n{node_id} T{_tags_field(node)} x{_e7_text(node['lon'])} y{_e7_text(node['lat'])}\n"


def _way_line(way_id: int, way: dict) -> str:
    refs = ",".join(f"n{int(ref)}" for ref in way.get("nodes") or ())
    return f"w{way_id} T{_tags_field(way)} N{refs}\n"


def _relation_line(relation_id: int, relation: dict) -> str:
    members = []
    for member in relation.get("members") or ():
        letter = _MEMBER_LETTER.get(member["type"])
        if letter is None:
            continue
        members.append(f"{letter}{int(member['ref'])}@{_escape(str(member.get('role') or ''))}")
    return f"r{relation_id} T{_tags_field(relation)} M{','.join(members)}\n"


def declared_bounds(doc: dict) -> tuple[float, float, float, float] | None:
    """The answer's ``bounds`` object (min_lat, min_lng, max_lat, max_lng), if it has one."""
    declared = doc.get("bounds")
    if isinstance(declared, dict):
        try:
            return (float(declared["minlat"]), float(declared["minlon"]),
                    float(declared["maxlat"]), float(declared["maxlon"]))
        except (KeyError, TypeError, ValueError):
            pass
    return None


def _bounds(doc: dict, nodes: dict[int, dict]) -> tuple[float, float, float, float] | None:
    """The answer's ``bounds`` object if present, else the extent of its nodes, else None."""
    declared = declared_bounds(doc)
    if declared is not None:
        return declared
    lats = [float(n["lat"]) for n in nodes.values() if "lat" in n and "lon" in n]
    lngs = [float(n["lon"]) for n in nodes.values() if "lat" in n and "lon" in n]
    if not lats:
        return None
    return min(lats), min(lngs), max(lats), max(lngs)
