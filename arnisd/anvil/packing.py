"""Packing small unsigned ints into 64-bit longs in the 1.16+ layout (no entry spans two
longs, low bits first), one array or many rows of equal width at once, and unpacking."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def packed_long_count(entry_count: int, bits: int) -> int:
    """Number of longs holding ``entry_count`` entries of ``bits`` bits (no entry spans two)."""
    per_long = 64 // bits
    return -(-entry_count // per_long)


@lru_cache(maxsize=None)
def pack_weights(bits: int) -> np.ndarray:
    """``2 ** (j * bits)`` for each slot j of a long: a matrix product packs whole rows."""
    per_long = 64 // bits
    return np.uint64(1) << (np.arange(per_long, dtype=np.uint64) * np.uint64(bits))


def pack_rows(rows: np.ndarray, bits: int) -> np.ndarray:
    """(m, n) small unsigned ints -> (m, longs) big-endian uint64 words, each row packed as
    :func:`pack_indices` packs one array."""
    m, count = rows.shape
    per_long = 64 // bits
    n_longs = packed_long_count(count, bits)
    if bits in (4, 8):
        # whole bytes: entry i lands in byte i // (8 // bits) of the little-endian long
        if count == n_longs * per_long:
            padded = rows.astype(np.uint8, copy=False)        # a whole section: no padding
        else:
            padded = np.zeros((m, n_longs * per_long), dtype=np.uint8)
            padded[:, :count] = rows
        if bits == 4:
            padded = padded[:, 0::2] | (padded[:, 1::2] << 4)
        return np.ascontiguousarray(padded).view("<u8").astype(">u8")
    padded = np.zeros((m, n_longs * per_long), dtype=np.uint64)
    padded[:, :count] = rows
    # fields never overlap, so the (wrapping) integer product equals the bitwise or
    words = padded.reshape(m, n_longs, per_long) @ pack_weights(bits)
    return words.astype(">u8")


def pack_indices(indices: np.ndarray, bits: int) -> bytes:
    """Pack small unsigned ints into big-endian 64-bit longs, low bits first, no spanning."""
    return pack_rows(np.asarray(indices).reshape(1, -1), bits).tobytes()


def unpack_indices(longs: np.ndarray, bits: int, entry_count: int) -> np.ndarray:
    """Inverse of :func:`pack_indices`; ``longs`` may be signed or unsigned 64-bit."""
    per_long = 64 // bits
    words = np.asarray(longs).astype(np.int64).view(np.uint64)
    shifts = np.arange(per_long, dtype=np.uint64) * np.uint64(bits)
    mask = np.uint64((1 << bits) - 1)
    values = (words[:, None] >> shifts) & mask
    return values.reshape(-1)[:entry_count]
