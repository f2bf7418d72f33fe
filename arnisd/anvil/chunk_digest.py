"""The content digest of a set of chunks: what a tile's result and a world's manifest record.

BLAKE2b-256 over every chunk's ``<cx, cz>`` (little-endian i32) and the Adler-32 of its
*uncompressed* NBT, in (cz, cx) order. Compressed bytes may legitimately differ between zlib
builds and levels; the digest does not. The Adler-32 is read from the last four bytes of the
chunk's zlib stream (RFC 1950 ends every stream with it), so nothing is inflated, and it
depends only on the uncompressed bytes. It is a 32-bit checksum, not a cryptographic hash:
good for noticing that two runs drew different chunks, not for proving that they drew the
same ones against an adversary.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

CHUNK_POSITION = struct.Struct("<ii")
ZLIB_HEADER_AND_TRAILER = 2 + 4


def uncompressed_adler32(zlib_stream: bytes) -> bytes:
    """The Adler-32 of what ``zlib_stream`` inflates to: its trailer, four big-endian bytes."""
    if len(zlib_stream) < ZLIB_HEADER_AND_TRAILER:
        raise ValueError(f"a chunk of {len(zlib_stream)} bytes is no zlib stream")
    return zlib_stream[-4:]


def digest_of_adlers(entries: Iterable[tuple[int, int, bytes]]) -> bytes:
    """The content digest of chunks given as ``(cx, cz, Adler-32 of the NBT)``, any order."""
    ordered = sorted((cz, cx, adler) for cx, cz, adler in entries)
    h = hashlib.blake2b(digest_size=32)
    h.update(b"".join(CHUNK_POSITION.pack(cx, cz) + adler for cz, cx, adler in ordered))
    return h.digest()


def content_digest(chunks: Iterable[tuple[int, int, bytes]]) -> bytes:
    """The content digest of chunks given as ``(cx, cz, zlib bytes)``, any order."""
    return digest_of_adlers((cx, cz, uncompressed_adler32(data)) for cx, cz, data in chunks)
