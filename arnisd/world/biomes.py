"""Biome registry: biome names <-> small integer ids for the chunk biome palettes."""

from __future__ import annotations

_NAMES: list[str] = []


def register(name: str) -> int:
    if ":" not in name:
        name = "minecraft:" + name
    if name in _NAMES:
        return _NAMES.index(name)
    _NAMES.append(name)
    return len(_NAMES) - 1


def name(biome_id: int) -> str:
    return _NAMES[biome_id]


def count() -> int:
    return len(_NAMES)


# Append only: ids follow declaration order.
PLAINS = register("plains")
FOREST = register("forest")
RIVER = register("river")
OCEAN = register("ocean")
BEACH = register("beach")
SWAMP = register("swamp")
MEADOW = register("meadow")
TAIGA = register("taiga")
DESERT = register("desert")
SNOWY_PLAINS = register("snowy_plains")
BIRCH_FOREST = register("birch_forest")
STONY_SHORE = register("stony_shore")
FROZEN_RIVER = register("frozen_river")
