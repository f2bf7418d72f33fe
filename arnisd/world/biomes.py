"""The biome vocabulary: every biome the generator sets, declared in ``arnisd.anvil.biome_registry``."""

from __future__ import annotations

# the registry's functions, offered with the vocabulary that fills it
from arnisd.anvil.biome_registry import count, name, register  # noqa: F401

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
