"""A world's manifest: ``arnisd-manifest.json`` in the world folder (Minecraft ignores it).

It records where the world came from, so that the world can be validated and updated:

- ``versions``: arnisd's, the generator's and the protocol's, and the chunks' DataVersion;
- ``job``: the settings every chunk depends on (bbox, scale, ground level, tiling, halo,
  terrain parameters and elevation source, spawn, level name);
- ``input``: the input's identity (a file's path and digest, or Overpass and its date);
- ``world``: the chunk rectangle the world covers (half-open, chunk coordinates); a world grown
  by ``arnisd update --extend`` also lists the chunk rectangle of each area it was grown by
  (``grown``): it covers their union, and ``job`` keeps the first bbox, whose projection the
  world keeps, and lists the grown bboxes;
- ``tiles``: per tile its id, its chunk rectangle, the digest of the input extract it was made
  from (None where no extract was cut) and the content digest of its chunks
  (``chunk_digest``), as hex;
- ``pending_update`` (only while ``arnisd update`` rewrites region files): the new input and
  the tiles being drawn again, whose chunks may be old or new until it ends; when growing the
  world, also the area being added (``grown``: its bbox and chunk rect), whose chunks may or
  may not be there yet.

This module only reads and writes the file; what goes in it is decided where jobs are set up.
The file is written atomically, keys sorted, so equal manifests are equal bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from arnisd.anvil.region import atomic_write

MANIFEST_NAME = "arnisd-manifest.json"
FORMAT = "arnisd-world-manifest"
FORMAT_VERSION = 1


class ManifestError(ValueError):
    """A manifest file that cannot be read as one."""


@dataclass(frozen=True, slots=True)
class TileRecord:
    """One tile of the world: the chunks it owns and the digests of its input and output."""

    tile_id: str
    chunks: tuple[int, int, int, int]       # cx0, cz0, cx1, cz1, half-open
    content_digest: str                     # hex
    input_digest: str | None = None         # hex

    def owns_chunk(self, cx: int, cz: int) -> bool:
        x0, z0, x1, z1 = self.chunks
        return x0 <= cx < x1 and z0 <= cz < z1

    def as_dict(self) -> dict:
        return {"id": self.tile_id, "chunks": list(self.chunks),
                "content_digest": self.content_digest, "input_digest": self.input_digest}

    @classmethod
    def from_dict(cls, d: dict) -> "TileRecord":
        return cls(str(d["id"]), _rect(d["chunks"]), str(d["content_digest"]),
                   None if d.get("input_digest") is None else str(d["input_digest"]))


@dataclass(frozen=True, slots=True)
class Manifest:
    """The whole manifest (see the module's docstring)."""

    versions: dict
    job: dict
    input: dict
    world_chunks: tuple[int, int, int, int]     # cx0, cz0, cx1, cz1, half-open
    tiles: tuple[TileRecord, ...]
    # an update under way: {"input": the new input, "tiles": [ids being drawn again]}; their
    # chunks may be old or new until the update ends and writes the manifest without it
    pending_update: dict | None = None
    # the chunk rects of the areas the world was grown by (it covers their union with the first)
    world_grown: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def world_areas(self) -> tuple[tuple[int, int, int, int], ...]:
        """Every chunk rect the world covers (the first, then the grown ones)."""
        return (self.world_chunks, *self.world_grown)

    @property
    def data_version(self) -> int:
        return int(self.versions["data_version"])

    @property
    def pending_area(self) -> tuple[int, int, int, int] | None:
        """The chunk rect of an area being added by an unfinished extend."""
        grown = (self.pending_update or {}).get("grown")
        return tuple(grown["chunks"]) if grown else None

    @property
    def pending_tiles(self) -> frozenset[str]:
        return frozenset(self.pending_update["tiles"]) if self.pending_update else frozenset()

    def as_dict(self) -> dict:
        out = {"format": FORMAT, "format_version": FORMAT_VERSION,
               "versions": self.versions, "job": self.job, "input": self.input,
               "world": {"chunks": list(self.world_chunks)}
               | ({"grown": [list(r) for r in self.world_grown]} if self.world_grown else {}),
               "tiles": [t.as_dict() for t in sorted(self.tiles, key=lambda t: t.tile_id)]}
        if self.pending_update is not None:
            out["pending_update"] = self.pending_update
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        if d.get("format") != FORMAT:
            raise ManifestError(f"not an arnisd manifest (format {d.get('format')!r})")
        if d.get("format_version") != FORMAT_VERSION:
            raise ManifestError(f"manifest format version {d.get('format_version')!r}, "
                                f"this arnisd reads {FORMAT_VERSION}")
        pending = d.get("pending_update")
        if pending is not None:
            grown = pending.get("grown")
            pending = {"input": dict(pending["input"]),
                       "tiles": [str(t) for t in pending["tiles"]]} | (
                {"grown": {"bbox": dict(grown["bbox"]), "chunks": list(_rect(grown["chunks"]))}}
                if grown else {})
        return cls(dict(d["versions"]), dict(d["job"]), dict(d["input"]),
                   _rect(d["world"]["chunks"]),
                   tuple(TileRecord.from_dict(t) for t in d["tiles"]), pending,
                   tuple(_rect(r) for r in d["world"].get("grown") or ()))


def _rect(values) -> tuple[int, int, int, int]:
    x0, z0, x1, z1 = (int(v) for v in values)
    if x1 < x0 or z1 < z0:
        raise ManifestError(f"chunk rectangle {[x0, z0, x1, z1]} is inverted")
    return x0, z0, x1, z1


def manifest_bytes(manifest: Manifest) -> bytes:
    return (json.dumps(manifest.as_dict(), indent=1, sort_keys=True) + "\n").encode()


def write_manifest(world_dir: Path, manifest: Manifest) -> Path:
    """Write ``world_dir/arnisd-manifest.json`` atomically and return its path."""
    path = Path(world_dir) / MANIFEST_NAME
    atomic_write(path, [manifest_bytes(manifest)])
    return path


def read_manifest(world_dir: Path) -> Manifest | None:
    """The world's manifest, None when it has none; ``ManifestError`` when it is unreadable."""
    path = Path(world_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{MANIFEST_NAME}: unreadable: {exc}") from None
    try:
        return Manifest.from_dict(json.loads(text))
    except ManifestError as exc:
        raise ManifestError(f"{MANIFEST_NAME}: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"{MANIFEST_NAME}: malformed: {type(exc).__name__}: {exc}") from None
