"""Writing NBT pieces as bytes: named tags of the few types a chunk holds, big-endian.

The chunk writer emits its fixed layout from these pieces directly instead of building an NBT
object tree, which is several times faster.
"""

from __future__ import annotations

import struct

# NBT tag type ids
END, BYTE, INT, LONG, STRING, LIST, COMPOUND, LONG_ARRAY = 0, 1, 3, 4, 8, 9, 10, 12
END_BYTE = bytes([END])


def name(tag_type: int, tag_name: str) -> bytes:
    raw = tag_name.encode("utf-8")
    return struct.pack(">BH", tag_type, len(raw)) + raw


def string_payload(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def named_int(tag_name: str, value: int) -> bytes:
    return name(INT, tag_name) + struct.pack(">i", value)


def named_long(tag_name: str, value: int) -> bytes:
    return name(LONG, tag_name) + struct.pack(">q", value)


def named_byte(tag_name: str, value: int) -> bytes:
    return name(BYTE, tag_name) + struct.pack(">b", value)


def named_string(tag_name: str, value: str) -> bytes:
    return name(STRING, tag_name) + string_payload(value)


def named_long_array(tag_name: str, longs_be: bytes) -> bytes:
    return name(LONG_ARRAY, tag_name) + struct.pack(">i", len(longs_be) // 8) + longs_be


def named_empty_list(tag_name: str) -> bytes:
    return name(LIST, tag_name) + struct.pack(">Bi", END, 0)
