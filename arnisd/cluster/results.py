"""A tile's result on the wire: chunk records grouped by region, split into frames, with digests.

``transfer digest``: BLAKE2b-256 over the records in the order they are sent
(``<cx, cz, length>`` little-endian, then the compressed bytes). The coordinator recomputes it
as frames arrive, so a done frame proves it got every byte.

``content digest``: BLAKE2b-256 over every chunk's ``<cx, cz>`` (little-endian) and the
Adler-32 of its *uncompressed* NBT, in (cz, cx) order. Two attempts of the same tile must have
the same content digest (compressed bytes may legitimately differ between zlib builds); a
difference is reported as a determinism bug. The Adler-32 is read from the last four bytes of
the chunk's zlib stream (RFC 1950 ends every stream with it), so nothing is inflated, and it
depends only on the uncompressed bytes, not on zlib's level or build. It is a 32-bit checksum,
not a cryptographic hash: good for noticing that two attempts drew different chunks (its only
use), not for proving that they drew the same ones against an adversary.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator

from arnisd.anvil.grid import region_of
from arnisd.cluster.protocol import MAX_RECORDS_PER_FRAME, TARGET_CHUNKS_FRAME_BYTES

RECORD_HEADER = struct.Struct("<iiI")
CHUNK_POSITION = struct.Struct("<ii")
ZLIB_HEADER_AND_TRAILER = 2 + 4


def new_transfer_hash():
    return hashlib.blake2b(digest_size=32)


def update_transfer_hash(h, records: Iterable) -> None:
    for cx, cz, data in records:
        h.update(RECORD_HEADER.pack(cx, cz, len(data)))
        h.update(data)


def uncompressed_adler32(zlib_stream: bytes) -> bytes:
    """The Adler-32 of what ``zlib_stream`` inflates to: its trailer, four big-endian bytes."""
    if len(zlib_stream) < ZLIB_HEADER_AND_TRAILER:
        raise ValueError(f"a chunk of {len(zlib_stream)} bytes is no zlib stream")
    return zlib_stream[-4:]


def content_digest(chunks: Iterable[tuple[int, int, bytes]]) -> bytes:
    """Digest of the chunks' positions and uncompressed Adler-32s, independent of their order
    and of zlib's settings (see the module's docstring)."""
    entries = sorted((cz, cx, uncompressed_adler32(data)) for cx, cz, data in chunks)
    h = hashlib.blake2b(digest_size=32)
    h.update(b"".join(CHUNK_POSITION.pack(cx, cz) + adler for cz, cx, adler in entries))
    return h.digest()


def group_into_frames(chunks: Iterable[tuple[int, int, bytes]],
                      target_bytes: int = TARGET_CHUNKS_FRAME_BYTES) -> Iterator[tuple[int, int, list]]:
    """Yield ``(rx, rz, records)`` batches: one region per batch, each under ``target_bytes``.

    Regions come in (rz, rx) order and chunks within a region in (cz, cx) order, so the
    transfer digest is the same for the same chunks whatever order generation produced.
    """
    by_region: dict[tuple[int, int], list] = {}
    for cx, cz, data in chunks:
        by_region.setdefault(region_of(cx, cz), []).append([cx, cz, data])
    for (rx, rz) in sorted(by_region, key=lambda r: (r[1], r[0])):
        records = sorted(by_region[(rx, rz)], key=lambda r: (r[1], r[0]))
        batch: list = []
        size = 0
        for record in records:
            if batch and (size + len(record[2]) > target_bytes or len(batch) >= MAX_RECORDS_PER_FRAME):
                yield rx, rz, batch
                batch, size = [], 0
            batch.append(record)
            size += len(record[2])
        if batch:
            yield rx, rz, batch
