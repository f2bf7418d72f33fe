"""One tile as a Dask task: the tile function a slot runs, on a Dask worker.

The task's one argument is a plain dict made by the coordinator (``tile_task``): the tile and
its lease number, the work unit, the extract bytes and elevation tiles (the data travels with the
task; a Dask worker reads nothing from a shared folder), the generator to run, and the
coordinator's arnisd and protocol versions. A worker whose arnisd differs refuses the task
with ``{"refused": reason}`` (a world drawn by another version would not match its
neighbours); a refusal is a result, not an exception, so it reaches the coordinator
whatever the worker's arnisd defines.

The result is framed as a ZeroMQ worker streams it: ``frames`` ``[(rx, rz, records)...]``
(one region each), their chunk ``count``, transfer ``digest`` and ``content_digest`` (and the
tile's ``map`` piece when its work unit asks for one), so the
coordinator stages and commits it with the very merger calls of the ZeroMQ path; or
``{"error"}`` when generation raised (a failure of the tile, as a ``fail`` frame).
"""

from __future__ import annotations

from arnisd import __version__
from arnisd.cluster.protocol import PROTOCOL_VERSION

_generators: dict[str | None, object] = {}      # resolved once per worker process


def tile_task(tile_id: str, lease: int, unit: dict, extract, generator: str | None) -> dict:
    """The argument of ``run_tile_task`` for one lease (``extract``: a ``TileExtract``)."""
    from arnisd.cluster.wire_names import elevation_to_wire
    return {"tile": tile_id, "lease": lease, "unit": unit, "extract": extract.elements,
            "elevation": elevation_to_wire(extract.elevation), "generator": generator,
            "arnisd": __version__, "protocol": PROTOCOL_VERSION}


def version_refusal(task: dict) -> str | None:
    """Why this worker refuses a task of a coordinator of another version (None: it does
    not)."""
    if task.get("arnisd") == __version__ and task.get("protocol") == PROTOCOL_VERSION:
        return None
    return (f"this Dask worker runs arnisd {__version__} (protocol {PROTOCOL_VERSION}), the "
            f"coordinator arnisd {task.get('arnisd')} (protocol {task.get('protocol')}): "
            "install the same arnisd version on every Dask worker")


def run_tile_task(task: dict) -> dict:
    """Generate one tile on a Dask worker (see the module's docstring)."""
    refusal = version_refusal(task)
    if refusal is not None:
        return {"tile": task.get("tile"), "lease": task.get("lease"), "refused": refusal}
    from arnisd.cluster.results import framed_result
    from arnisd.cluster.tile_compute import compute_tile, resolve_generator
    generator_path = task.get("generator")
    generate = _generators.get(generator_path)
    if generate is None:
        from arnisd.library_threads import one_library_thread
        one_library_thread()        # a Dask worker's threads are its slots: one BLAS thread each
        generate = _generators[generator_path] = resolve_generator(generator_path)
    result = compute_tile(task, generate)
    if "error" in result:
        return {"tile": task["tile"], "lease": task["lease"], "error": result["error"]}
    frames, count, digest = framed_result(result["chunks"])
    return {"tile": task["tile"], "lease": task["lease"], "frames": frames, "count": count,
            "digest": digest, "content_digest": result["content_digest"],
            "elapsed_s": result["elapsed_s"], "map": result["map"]}
