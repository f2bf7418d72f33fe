"""Generation settings shared by every tile of a job (the work unit's ``settings``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

DEFAULT_GROUND_LEVEL = -62
DEFAULT_HALO_BLOCKS = 32


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """What every tile of a job must agree on, besides the projection."""

    scale: float = 1.0
    ground_level: int = DEFAULT_GROUND_LEVEL
    terrain: bool = False
    interior: bool = False
    halo_blocks: int = DEFAULT_HALO_BLOCKS

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GenerationSettings":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)
