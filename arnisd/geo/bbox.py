"""Geographic bounding boxes: parsing, validation and area."""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6371000.0


class BBoxError(ValueError):
    """A bounding box a user gave us that cannot be used."""


@dataclass(frozen=True, slots=True)
class BBox:
    """A latitude/longitude rectangle in degrees (WGS84)."""

    min_lat: float
    min_lng: float
    max_lat: float
    max_lng: float

    def __post_init__(self) -> None:
        for name in ("min_lat", "max_lat"):
            value = getattr(self, name)
            if not math.isfinite(value) or not -90.0 <= value <= 90.0:
                raise BBoxError(f"{name} {value} is outside -90..90")
        for name in ("min_lng", "max_lng"):
            value = getattr(self, name)
            if not math.isfinite(value) or not -180.0 <= value <= 180.0:
                raise BBoxError(f"{name} {value} is outside -180..180")
        if self.min_lat >= self.max_lat:
            raise BBoxError(f"min_lat {self.min_lat} must be below max_lat {self.max_lat}")
        if self.min_lng >= self.max_lng:
            raise BBoxError(f"min_lng {self.min_lng} must be below max_lng {self.max_lng}")

    @classmethod
    def parse(cls, text: str) -> "BBox":
        """Parse Arnis's order: ``MIN_LAT,MIN_LNG,MAX_LAT,MAX_LNG``."""
        parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
        if len(parts) != 4:
            raise BBoxError(f"bbox {text!r} needs four numbers MIN_LAT,MIN_LNG,MAX_LAT,MAX_LNG")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise BBoxError(f"bbox {text!r} has a part that is not a number") from None
        return cls(*values)

    def as_dict(self) -> dict[str, float]:
        return {"min_lat": self.min_lat, "min_lng": self.min_lng,
                "max_lat": self.max_lat, "max_lng": self.max_lng}

    @classmethod
    def from_dict(cls, d: dict) -> "BBox":
        return cls(float(d["min_lat"]), float(d["min_lng"]), float(d["max_lat"]), float(d["max_lng"]))

    def __str__(self) -> str:
        return f"{self.min_lat},{self.min_lng},{self.max_lat},{self.max_lng}"

    def height_m(self) -> float:
        """North-south extent in metres (haversine)."""
        a = math.sin(math.radians(self.max_lat - self.min_lat) / 2) ** 2
        return EARTH_RADIUS_M * 2 * math.atan2(math.sqrt(a), math.sqrt(1 - a))

    def width_m(self) -> float:
        """East-west extent in metres at the middle latitude (haversine)."""
        mid_lat = (self.min_lat + self.max_lat) / 2
        b = math.cos(math.radians(mid_lat)) ** 2 * math.sin(math.radians(self.max_lng - self.min_lng) / 2) ** 2
        return EARTH_RADIUS_M * 2 * math.atan2(math.sqrt(b), math.sqrt(1 - b))

    def area_km2(self) -> float:
        return self.width_m() * self.height_m() / 1e6

    def expanded(self, d_lat: float, d_lng: float) -> "BBox":
        """A larger box, clamped to the valid range."""
        return BBox(max(-90.0, self.min_lat - d_lat), max(-180.0, self.min_lng - d_lng),
                    min(90.0, self.max_lat + d_lat), min(180.0, self.max_lng + d_lng))

    def contains(self, lat: float, lng: float) -> bool:
        """Whether the point lies in the box (its edges included)."""
        return self.min_lat <= lat <= self.max_lat and self.min_lng <= lng <= self.max_lng
