"""Elevation tiles: Terrarium tiles (``terrarium``), where they come from (``source``),
and the job-wide ground surface per block column (``heights``).

The coordinator picks the zoom (``choose_zoom``), fetches ``tiles_needed`` for the whole world
once (``ElevationSource.fetch_many``) and derives ``TerrainParams`` (``compute_params``); a
worker decodes the tiles of its lease and calls ``height_field`` for its window plus halo.

The names below are imported from their module on first use, so importing one submodule (a
worker's slot needs ``heights``) does not pull in the others (``source`` brings urllib,
http.client and certifi, which only the coordinator uses).
"""

from __future__ import annotations

import importlib

_MODULE_OF_NAME = {
    **dict.fromkeys(("DEFAULT_HEADROOM_BLOCKS", "SMOOTHING_RADIUS_BLOCKS", "TerrainParams",
                     "compute_params", "decode_tiles", "height_field", "height_m_field",
                     "job_tiles", "pixel_window", "tiles_needed"), "heights"),
    **dict.fromkeys(("DEFAULT_ELEVATION_URL", "ElevationError", "ElevationSource"), "source"),
    **dict.fromkeys(("TerrariumError", "choose_zoom", "decode_terrarium", "encode_terrarium",
                     "pixel_xy", "tile_of", "tiles_covering"), "terrarium"),
}

__all__ = [
    "DEFAULT_ELEVATION_URL", "DEFAULT_HEADROOM_BLOCKS", "SMOOTHING_RADIUS_BLOCKS",
    "ElevationError", "ElevationSource", "TerrainParams", "TerrariumError", "choose_zoom",
    "compute_params", "decode_terrarium", "decode_tiles", "encode_terrarium", "height_field",
    "height_m_field", "job_tiles", "pixel_window", "pixel_xy", "tile_of", "tiles_covering",
    "tiles_needed",
]


def __getattr__(name: str):
    module = _MODULE_OF_NAME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value                 # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
