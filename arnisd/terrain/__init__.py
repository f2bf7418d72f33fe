"""Real terrain: Terrarium elevation tiles (``terrarium``), where they come from (``source``),
and the job-wide ground surface per block column (``heights``).

The coordinator picks the zoom (``choose_zoom``), fetches ``tiles_needed`` for the whole world
once (``ElevationSource.fetch_many``) and derives ``TerrainParams`` (``compute_params``); a
worker decodes the tiles of its lease and calls ``height_field`` for its window plus halo.
"""

from arnisd.terrain.heights import (DEFAULT_HEADROOM_BLOCKS, SMOOTHING_RADIUS_BLOCKS,
                                    TerrainParams, compute_params, decode_tiles, height_field,
                                    height_m_field, job_tiles, pixel_window, tiles_needed)
from arnisd.terrain.source import DEFAULT_ELEVATION_URL, ElevationError, ElevationSource
from arnisd.terrain.terrarium import (TerrariumError, choose_zoom, decode_terrarium,
                                      encode_terrarium, pixel_xy, tile_of, tiles_covering)

__all__ = [
    "DEFAULT_ELEVATION_URL", "DEFAULT_HEADROOM_BLOCKS", "SMOOTHING_RADIUS_BLOCKS",
    "ElevationError", "ElevationSource", "TerrainParams", "TerrariumError", "choose_zoom",
    "compute_params", "decode_terrarium", "decode_tiles", "encode_terrarium", "height_field",
    "height_m_field", "job_tiles", "pixel_window", "pixel_xy", "tile_of", "tiles_covering",
    "tiles_needed",
]
