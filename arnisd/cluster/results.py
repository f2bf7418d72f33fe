"""A tile's result on the wire: chunk records grouped by region, split into frames, with digests.

``transfer digest``: BLAKE2b-256 over the records in the order they are sent
(``<cx, cz, length>`` little-endian, then the compressed bytes). The coordinator recomputes it
as frames arrive, so a done frame proves it got every byte.

``content digest``: ``arnisd.anvil.chunk_digest`` (positions and uncompressed Adler-32s, the
same however the chunks were compressed or ordered): two attempts of the same tile must have
the same one; a difference is reported as a determinism bug.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator

from arnisd.anvil.grid import region_of
# a done frame's content digest, here beside the transfer digest for the cluster's callers
from arnisd.anvil.chunk_digest import content_digest, uncompressed_adler32  # noqa: F401
from arnisd.cluster.protocol import MAX_RECORDS_PER_FRAME, TARGET_CHUNKS_FRAME_BYTES, make

RECORD_HEADER = struct.Struct("<iiI")


def new_transfer_hash():
    return hashlib.blake2b(digest_size=32)


def update_transfer_hash(h, records: Iterable) -> None:
    for cx, cz, data in records:
        h.update(RECORD_HEADER.pack(cx, cz, len(data)))
        h.update(data)


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


def framed_result(chunks: Iterable[tuple[int, int, bytes]]) -> tuple[list, int, bytes]:
    """A whole result at once (a Dask task's): ``(frames, chunk count, transfer digest)``,
    the frames as ``group_into_frames`` makes them and the digest a streamed done frame has."""
    frames = list(group_into_frames(chunks))
    h = new_transfer_hash()
    for _, _, records in frames:
        update_transfer_hash(h, records)
    return frames, sum(len(records) for _, _, records in frames), h.digest()


def lease_frames(tile: str, lease: int, chunks: Iterable[tuple[int, int, bytes]]) -> tuple[list[bytes], int, bytes]:
    """A lease's result as the encoded ``chunks`` frames its worker sends (``seq`` 0, 1, ...:
    a stream always restarts from its first frame), the chunk count and the transfer digest.
    A slot makes them once, so its worker forwards bytes, with no Python per chunk, and the
    pipe between them carries a few large objects instead of three per chunk."""
    frames, count, digest = framed_result(chunks)
    return [make("chunks", tile=tile, lease=lease, seq=seq, rx=rx, rz=rz, records=records)
            for seq, (rx, rz, records) in enumerate(frames)], count, digest
