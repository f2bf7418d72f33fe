"""What an element's OSM tags say, read the same way by every family: numbers, layer, water.

Kept apart from the families so that the ground surface (and the coordinator, choosing which
elevation tiles a lease needs) can ask the same questions without importing any family.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def parse_number(value: str | None) -> float | None:
    """The leading number of a tag value ("12", "12.5 m", "3;4" -> 3), or None."""
    if not value:
        return None
    match = _NUMBER.match(value.replace(",", "."))
    if not match:
        return None
    return float(match.group(1))


def parse_int(value: str | None, default: int = 0) -> int:
    number = parse_number(value)
    return default if number is None else int(number)


def layer_of(tags: dict[str, str]) -> int:
    """The `layer` tag as an int (0 when missing or not a number)."""
    return parse_int(tags.get("layer"), 0)


def is_water_area(tags: dict[str, str]) -> bool:
    return (tags.get("natural") in ("water", "bay", "strait") or "water" in tags
            or tags.get("waterway") in ("riverbank", "dock", "boatyard")
            or tags.get("landuse") in ("reservoir", "basin") and tags.get("basin") != "dry")


def reads_ground_beyond_window(kind: str, tags: dict) -> bool:
    """Whether drawing an element reads the ground over its whole extent, not only near the
    window (a superset of the families that do: buildings and their parts, water areas,
    raised ways). The coordinator ships such elements' whole extent of elevation tiles."""
    if kind == "area":
        if "building" in tags or "building:part" in tags:
            return True
        return is_water_area(tags)
    if kind == "line" and ("highway" in tags or "railway" in tags):
        if tags.get("bridge", "no") != "no":
            return True
        return layer_of(tags) > 0
    return False
