"""The block-state registry: block names and properties <-> the small integer ids of chunk palettes.

Generation declares its vocabulary in it (``arnisd.world.blocks``) at import time, in one order,
so ids are the same in every process; the chunk encoder turns ids back into palette entries.
Append only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BlockState:
    """A block name and its properties, as written in a chunk palette."""

    name: str
    properties: tuple[tuple[str, str], ...] = ()
    motion_blocking: bool = True   # counts for the MOTION_BLOCKING heightmap
    is_leaves: bool = False        # excluded from MOTION_BLOCKING_NO_LEAVES
    colour: tuple[int, int, int] = (128, 128, 128)  # top-down map colour


_STATES: list[BlockState] = []
_IDS: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}


def register(name: str, colour: tuple[int, int, int], motion_blocking: bool = True,
             is_leaves: bool = False, **properties: str) -> int:
    """Declare a block state and return its id (idempotent for the same state)."""
    if ":" not in name:
        name = "minecraft:" + name
    props = tuple(sorted((k, str(v)) for k, v in properties.items()))
    key = (name, props)
    if key in _IDS:
        return _IDS[key]
    _IDS[key] = len(_STATES)
    _STATES.append(BlockState(name, props, motion_blocking, is_leaves, colour))
    return _IDS[key]


def state(block_id: int) -> BlockState:
    return _STATES[block_id]


def block_id(name: str, **properties: str) -> int:
    """The id of an already declared block state; KeyError if it was never declared."""
    if ":" not in name:
        name = "minecraft:" + name
    return _IDS[(name, tuple(sorted((k, str(v)) for k, v in properties.items())))]


def count() -> int:
    return len(_STATES)


def all_states() -> list[BlockState]:
    return list(_STATES)


AIR = register("air", (0, 0, 0), motion_blocking=False)    # id 0: what an empty section holds
