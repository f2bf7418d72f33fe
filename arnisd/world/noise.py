"""Deterministic randomness: every random choice is a hash of (x, z, element id, purpose).

Never a shared generator, never iteration order: a tile and its neighbour draw the same value
for the same column. Vectorised over numpy arrays of coordinates.
"""

from __future__ import annotations

import zlib

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def purpose_id(purpose: str) -> int:
    """A stable integer for a purpose name (crc32, the same in every process)."""
    return zlib.crc32(purpose.encode("utf-8"))


def _mix(v: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser
    with np.errstate(over="ignore"):
        v = (v ^ (v >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        v = (v ^ (v >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return v ^ (v >> np.uint64(31))


def hash_u64(xs, zs, element_id: int, purpose: str) -> np.ndarray:
    """64-bit hashes of (x, z) for one element and purpose."""
    xs = np.asarray(xs, dtype=np.int64).astype(np.uint64)
    zs = np.asarray(zs, dtype=np.int64).astype(np.uint64)
    seed = np.uint64((int(element_id) * 0x9E3779B97F4A7C15 + purpose_id(purpose)) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        v = _mix(xs * np.uint64(0x100000001B3) ^ seed)
        v = _mix(v ^ (zs * np.uint64(0xC2B2AE3D27D4EB4F)))
    return v


def hash_unit(xs, zs, element_id: int, purpose: str) -> np.ndarray:
    """Uniform floats in [0, 1) from the hash."""
    return (hash_u64(xs, zs, element_id, purpose) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def choose(element_id: int, purpose: str, options: list):
    """Pick one option for a whole element (e.g. its wall block), deterministically."""
    h = int(hash_u64(np.array([0]), np.array([0]), element_id, purpose)[0])
    return options[h % len(options)]
