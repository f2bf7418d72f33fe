"""The biome registry: biome names <-> the small integer ids of chunk biome palettes.

Generation declares its biomes in it (``arnisd.world.biomes``) at import time; append only.
"""

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


PLAINS = register("plains")     # the biome of every section nothing set; id 0
