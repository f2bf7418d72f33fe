"""The content digest: the same for the same chunks however they were compressed or ordered,
different when any chunk's content or position differs; nothing is inflated to compute it."""

from __future__ import annotations

import zlib

import msgpack
import numpy as np
import pytest

from arnisd.anvil import chunk
from arnisd.cluster import protocol
from arnisd.cluster.results import content_digest, uncompressed_adler32
from arnisd.world import blocks


def _nbt_like(cx: int, cz: int) -> bytes:
    return f"chunk {cx},{cz} ".encode() * 200 + bytes(range(256)) * 4


def _chunks(level: int = 6) -> list[tuple[int, int, bytes]]:
    return [(cx, cz, zlib.compress(_nbt_like(cx, cz), level))
            for cz in range(-2, 3) for cx in range(-3, 4)]


def _raw_deflate_stream(raw: bytes) -> bytes:
    """The same data through another zlib configuration (window, memory, strategy)."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 9, 1, zlib.Z_HUFFMAN_ONLY)
    return packer.compress(raw) + packer.flush()


def test_the_trailer_is_the_adler32_of_the_uncompressed_bytes():
    for _, _, data in _chunks(9):
        assert uncompressed_adler32(data) == zlib.adler32(zlib.decompress(data)).to_bytes(4, "big")


def test_the_same_chunks_compressed_otherwise_and_reordered_give_the_same_digest():
    base = content_digest(_chunks(6))
    assert content_digest(list(reversed(_chunks(1)))) == base
    assert content_digest(_chunks(0)) == base                       # stored blocks only
    other = [(cx, cz, _raw_deflate_stream(zlib.decompress(d))) for cx, cz, d in _chunks(6)]
    assert [d for _, _, d in other] != [d for _, _, d in _chunks(6)]
    assert content_digest(other) == base


def test_the_spliced_chunk_encoder_gives_the_digest_of_plain_zlib():
    sections = {-4: np.repeat(np.array([blocks.BEDROCK, blocks.DIRT, blocks.GRASS_BLOCK] + [0] * 13,
                                       dtype=np.uint16), 256)}
    spliced = [(cx, 3, chunk.encode_chunk_zlib(cx, 3, sections)) for cx in range(4)]
    plain = [(cx, 3, zlib.compress(chunk.encode_chunk(cx, 3, sections), 9)) for cx in range(4)]
    assert content_digest(spliced) == content_digest(plain)


def test_one_changed_moved_missing_or_extra_chunk_changes_the_digest():
    chunks = _chunks()
    base = content_digest(chunks)
    changed = list(chunks)
    cx, cz, data = changed[5]
    raw = bytearray(zlib.decompress(data))
    raw[100] ^= 1
    changed[5] = (cx, cz, zlib.compress(bytes(raw)))
    moved = [(cx + 1 if i == 3 else cx, cz, data) for i, (cx, cz, data) in enumerate(chunks)]
    swapped = [(cz, cx, data) for cx, cz, data in chunks]
    extra = chunks + [(50, 50, zlib.compress(b"more"))]
    digests = {content_digest(c) for c in (changed, moved, swapped, chunks[1:], extra)}
    assert base not in digests and len(digests) == 5
    assert content_digest([]) != base and len(base) == 32


def test_a_record_too_short_for_a_zlib_stream_is_refused():
    with pytest.raises(ValueError):
        content_digest([(0, 0, b"\x78\x9c\x01")])


def test_no_chunk_is_inflated(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("content_digest inflated a chunk")
    monkeypatch.setattr(zlib, "decompress", refuse)
    monkeypatch.setattr(zlib, "decompressobj", refuse)
    content_digest(_chunks())


def test_workers_of_the_inflating_digest_protocol_are_refused():
    """Version 1 workers sent the digest of inflated chunks: mixing them with this digest would
    report determinism bugs that are not there, so their frames are refused."""
    old_done = msgpack.packb({"t": "done", "v": 1, "tile": "t", "attempt": 1, "count": 1,
                              "digest": bytes(32), "content_digest": bytes(32), "elapsed_s": 1.0})
    with pytest.raises(protocol.ProtocolError, match="protocol version"):
        protocol.decode_from_worker(old_done)
    assert protocol.PROTOCOL_VERSION >= 2
