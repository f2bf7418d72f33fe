"""One tile's generation, as run inside a worker's slot process.

The cluster treats generation as a function from a tile to chunks: ``generate(elements,
projection, owned, settings) -> [(cx, cz, zlib bytes)]``, by default
``arnisd.world.generate:generate_chunks``. A different function can be named as
``module:function`` (tests inject slow or fake generators this way, through the worker's
``generator`` setting or the ``ARNISD_GENERATOR`` environment variable).
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
import traceback

DEFAULT_GENERATOR = "arnisd.world.generate:generate_chunks"
GENERATOR_ENV = "ARNISD_GENERATOR"


def _takes_map_piece(generate) -> bool:
    try:
        return "map_piece" in inspect.signature(generate).parameters
    except (TypeError, ValueError):
        return False


def resolve_generator(path: str | None):
    """Import ``module:function``; ``None`` means the environment's choice or the default."""
    path = path or os.environ.get(GENERATOR_ENV) or DEFAULT_GENERATOR
    module_name, _, function_name = path.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"generator {path!r} must look like module:function")
    return getattr(importlib.import_module(module_name), function_name)


def compute_tile(task: dict, generate) -> dict:
    """Run one lease's generation (``task``: its ``unit``, ``extract`` and ``elevation``, as the
    lease frame carried them); returns ``{"chunks", "content_digest", "elapsed_s", "map"}``
    (``map``: the tile's map piece, ``arnisd.map_piece``, when the unit asks for one, else
    None) or ``{"error"}``. Never raises: a failure becomes the worker's ``fail`` frame."""
    started = time.perf_counter()
    try:
        from arnisd.cluster.results import content_digest
        from arnisd.cluster.wire_names import MAP_FIELD, WorkUnit, elevation_from_wire

        unit = WorkUnit.from_wire(task["unit"])
        elements = []
        if task["extract"] is not None:
            from arnisd.osm.extract import unpack_elements
            elements = unpack_elements(task["extract"])
        elevation = elevation_from_wire(task["elevation"])       # terrain jobs only
        extra = {} if elevation is None else {"elevation": elevation}
        wants_map = bool(task["unit"].get(MAP_FIELD))
        pieces: list[bytes] = []
        if wants_map and _takes_map_piece(generate):
            from arnisd.map_piece import encode_piece
            extra["map_piece"] = lambda owned, *arrays: pieces.append(encode_piece(owned, *arrays))
        chunks = [(int(cx), int(cz), bytes(data))
                  for cx, cz, data in generate(elements, unit.projection, unit.owned,
                                               unit.settings, **extra)]
        if wants_map and not pieces:           # this generator keeps its canvas: read back
            from arnisd.map_piece import piece_from_chunks
            pieces.append(piece_from_chunks(unit.owned, chunks))
        return {"chunks": chunks, "content_digest": content_digest(chunks),
                "elapsed_s": time.perf_counter() - started,
                "map": pieces[0] if pieces else None}
    except Exception as exc:
        detail = traceback.format_exc(limit=4)
        return {"error": f"{type(exc).__name__}: {exc}\n{detail}"[:3900]}
