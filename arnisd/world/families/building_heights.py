"""Heights of buildings that have neither `height` nor `building:levels`: guessed from the
tagged heights around them, else from the building's type and footprint (Arnis's tables).

Around them: the input reader tags every such building with the median storeys of the tagged
buildings within 50 m (``arnisd.osm.nearby_heights``, computed once over the whole input, so
every tile's extract carries the same value). Apartments, offices, shops, `building=yes` and
unknown types of at least ``NEIGHBOURHOOD_MIN_M2`` take that storey count: in a centre of 5 to 8
storeys they rise with it. Houses, halls and small buildings keep their type's guess.

Type and footprint: each type has a few likely storey counts with weights (houses mostly 2,
apartments 3 to 6, offices by footprint, ...), or a hall height in blocks (churches,
industrial halls, garages); `building=yes` and unknown types go by footprint (a small box, a
house, a mid-rise block, a large hall). The pick is a hash of the building's OSM id, so the
same building gets the same height in every tile and every run.
"""

from __future__ import annotations

from arnisd.osm.nearby_heights import NEARBY_TAG
from arnisd.world.families.base import pick

# (storey count or hall blocks, weight); weights are percentages as in Arnis
_TOWER_HALL = ((12, 40), (16, 35), (20, 25))
_LEVELS = {
    ("bungalow", "static_caravan", "kiosk"): ((1, 100),),
    ("house", "detached", "villa", "farm"): ((1, 25), (2, 55), (3, 20)),
    ("semidetached_house",): ((2, 70), (3, 30)),
    ("terrace",): ((2, 50), (3, 40), (4, 10)),
    ("apartments", "residential", "dormitory"): ((3, 30), (4, 30), (5, 25), (6, 15)),
    ("hotel",): ((3, 25), (4, 30), (5, 25), (6, 10), (8, 10)),
    ("retail", "shop", "supermarket"): ((1, 60), (2, 40)),
    ("parking",): ((2, 30), (3, 40), (4, 20), (5, 10)),
    ("school", "kindergarten", "college", "university"): ((2, 50), (3, 40), (4, 10)),
    ("hospital",): ((4, 40), (5, 30), (6, 20), (7, 10)),
    ("cabin",): ((1, 80), (2, 20)),
}
_HALLS = {
    ("cathedral",): ((18, 50), (21, 30), (24, 20)),
    ("church", "chapel", "mosque", "synagogue", "temple", "religious"): ((10, 50), (12, 30),
                                                                        (14, 20)),
    ("industrial", "warehouse", "hangar", "barn", "stable"): ((5, 20), (7, 50), (9, 30)),
    ("garage", "garages", "carport", "shed", "hut"): ((3, 100),),
    # not in Arnis's table (it would guess 2 to 4 storeys from the footprint): low by nature
    ("greenhouse", "glasshouse"): ((4, 100),),
    ("service", "transformer_tower", "utility", "pumping_station", "bunker", "storage",
     "allotment_house", "outbuilding"): ((3, 100),),
}
LEVELS_BY_TYPE = {name: table for names, table in _LEVELS.items() for name in names}
HALL_BY_TYPE = {name: table for names, table in _HALLS.items() for name in names}
PART_AREA_M2 = 400      # parts use the middle band, so the parts of one building agree more
NEIGHBOURHOOD_MIN_M2 = 60
NEIGHBOURHOOD_TYPES = frozenset({"yes", "apartments", "residential", "commercial", "office",
                                 "retail", "hotel", "mixed_use", "public", "civic",
                                 "government"})
MAX_GUESSED_LEVELS = 40


def _weighted(osm_id: int, purpose: str, table) -> int:
    """A value of ``table`` picked by the hash, each as often as its weight says."""
    expanded = [value for value, weight in table for _ in range(weight // 5)]
    return pick(osm_id, purpose, expanded)


def _office_levels(area_m2: float):
    if area_m2 < 300:
        return ((2, 40), (3, 60))
    if area_m2 < 1000:
        return ((3, 40), (4, 35), (5, 25))
    return ((4, 40), (5, 30), (6, 20), (8, 10))


def inferred_height(building_type: str, tags: dict[str, str], osm_id: int,
                    area_m2: float) -> tuple[str, int]:
    """``("levels", n)`` storeys or ``("hall", blocks)`` for an untagged building."""
    if "building:part" in tags:
        area_m2 = PART_AREA_M2
    if tags.get("man_made") == "tower":
        return "hall", _weighted(osm_id, "height-tower", _TOWER_HALL)
    nearby = _nearby_levels(tags)
    if nearby is not None and area_m2 >= NEIGHBOURHOOD_MIN_M2 and (
            building_type in NEIGHBOURHOOD_TYPES
            or building_type not in HALL_BY_TYPE and building_type not in LEVELS_BY_TYPE):
        return "levels", nearby
    if building_type in HALL_BY_TYPE:
        return "hall", _weighted(osm_id, "height-hall", HALL_BY_TYPE[building_type])
    if building_type in LEVELS_BY_TYPE:
        return "levels", _weighted(osm_id, "height-levels", LEVELS_BY_TYPE[building_type])
    if building_type in ("office", "commercial"):
        return "levels", _weighted(osm_id, "height-levels", _office_levels(area_m2))
    # building=yes and unknown types: by footprint
    if area_m2 < 40:
        if pick(osm_id, "height-tiny", (True, False)):
            return "hall", 3
        return "levels", 1
    if area_m2 < 150:
        return "levels", _weighted(osm_id, "height-levels", ((1, 15), (2, 60), (3, 25)))
    if area_m2 < 600:
        return "levels", _weighted(osm_id, "height-levels", ((2, 40), (3, 40), (4, 20)))
    roll = pick(osm_id, "height-large", tuple(range(100)))
    if roll < 40:
        return "hall", 7
    return "levels", 3 if roll < 75 else 4


def _nearby_levels(tags: dict[str, str]) -> int | None:
    """The neighbourhood's storeys from the reader's tag, rounded (half up), or None."""
    try:
        value = float(tags.get(NEARBY_TAG, ""))
    except ValueError:
        return None
    return int(min(max(int(value + 0.5), 1), MAX_GUESSED_LEVELS))
