"""Generation settings shared by every tile of a job (the work unit's ``settings``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

DEFAULT_GROUND_LEVEL = -62
DEFAULT_HALO_BLOCKS = 32
#: Raised whenever the same input and settings draw different chunks; a world's manifest
#: records it, so a world made by another generator version is known to differ everywhere.
GENERATOR_VERSION = 2


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """What every tile of a job must agree on, besides the projection.

    ``terrain`` is the work unit's flag: the world stands on real elevation. The job-wide
    vertical mapping that makes tiles agree (``TerrainParams.as_dict()``: zoom, h_min_m,
    h_max_m, blocks_per_m, ground_level) is computed once by the coordinator and travels in
    ``terrain_params``; a worker draws terrain only when both are set. ``fill_ground`` puts
    stone under the top layers of dirt, down to bedrock.
    """

    scale: float = 1.0
    ground_level: int = DEFAULT_GROUND_LEVEL
    terrain: bool = False
    interior: bool = False
    halo_blocks: int = DEFAULT_HALO_BLOCKS
    terrain_params: dict | None = None
    fill_ground: bool = False

    @property
    def on_terrain(self) -> bool:
        """Whether tiles draw real terrain (the flag is on and the job's params are known)."""
        return bool(self.terrain and self.terrain_params)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GenerationSettings":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if known.get("terrain_params") is not None:
            known["terrain_params"] = dict(known["terrain_params"])
        return cls(**known)
