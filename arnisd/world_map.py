"""The map of a world folder: its region files read in parallel (``region_map``), put together
into one image (``arnisd preview``, ``generate --preview``), or cut into a tile pyramid for a
browser (``map_tiles``)."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arnisd.anvil.grid import REGION_SIZE_BLOCKS
from arnisd.anvil.region import region_coords_from_name
from arnisd.errors import UserError
from arnisd.map_scale import average_squares, averaged_bands, scale_factor
from arnisd.map_tiles import write_tiles
from arnisd.png import PngWriter, write_png
from arnisd.preview import MIN_Y, shade
from arnisd.region_map import render_region

MAX_SIDE_PX = 4096


class PreviewError(UserError):
    """A world folder that cannot be previewed."""


def region_paths(world: Path) -> list[Path]:
    """The world's region files, north to south then west to east."""
    region_dir = Path(world) / "region"
    if not region_dir.is_dir():
        raise PreviewError(f"{world} is not a world folder (no region/ directory)")
    paths = sorted(region_dir.glob("r.*.*.mca"), key=lambda p: region_coords_from_name(p)[::-1])
    if not paths:
        raise PreviewError(f"{region_dir} holds no region files")
    return paths


class RegionMosaic:
    """A world's map put together from its regions' (or windows') colour, height and water
    arrays, from reading region files or from the canvases that drew them."""

    def __init__(self):
        self._regions: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _region(self, rx: int, rz: int):
        found = self._regions.get((rx, rz))
        if found is None:
            side = REGION_SIZE_BLOCKS
            found = (np.zeros((side, side, 3), dtype=np.uint8),
                     np.full((side, side), MIN_Y - 1, dtype=np.int16),
                     np.zeros((side, side), dtype=np.int16))
            self._regions[(rx, rz)] = found
        return found

    def add_region(self, rx: int, rz: int, colour, top, depth) -> None:
        self._regions[(rx, rz)] = (colour, top, depth)

    def add_window(self, owned, colour, top, depth) -> None:
        """The map of ``owned`` (a BlockRect inside one region)."""
        side = REGION_SIZE_BLOCKS
        rx, rz = owned.x0 // side, owned.z0 // side
        where = (slice(owned.z0 - rz * side, owned.z1 - rz * side),
                 slice(owned.x0 - rx * side, owned.x1 - rx * side))
        for whole, piece in zip(self._region(rx, rz), (colour, top, depth)):
            whole[where] = piece

    def image(self, world: Path) -> np.ndarray:
        """The shaded map (north up), cropped to the columns drawn."""
        if not self._regions:
            raise PreviewError(f"{world} has no blocks to draw")
        rxs = [rx for rx, _ in self._regions]
        rzs = [rz for _, rz in self._regions]
        rx0, rz0 = min(rxs), min(rzs)
        side = REGION_SIZE_BLOCKS
        width, height = (max(rxs) - rx0 + 1) * side, (max(rzs) - rz0 + 1) * side
        colour = np.zeros((height, width, 3), dtype=np.uint8)
        top = np.full((height, width), MIN_Y - 1, dtype=np.int16)
        depth = np.zeros((height, width), dtype=np.int16)
        for (rx, rz), (c, t, d) in self._regions.items():
            z0, x0 = (rz - rz0) * side, (rx - rx0) * side
            colour[z0:z0 + side, x0:x0 + side] = c
            top[z0:z0 + side, x0:x0 + side] = t
            depth[z0:z0 + side, x0:x0 + side] = d
        present = top >= MIN_Y
        rows, cols = np.flatnonzero(present.any(axis=1)), np.flatnonzero(present.any(axis=0))
        if len(rows) == 0:
            raise PreviewError(f"{world} has no blocks to draw")
        crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        return shade(colour[crop], top[crop], depth[crop])


@dataclass
class ShadedRegion:
    """One region's map, shaded where it was read: ``pixels`` (512, 512, 3) with its first row
    shaded as if nothing were north of it, that row's colour, height and water depth, to shade
    it again against the region to the north, the heights of its last row (its southern
    neighbour's north), and which rows and columns have blocks."""
    rx: int
    rz: int
    pixels: np.ndarray
    first_row: tuple[np.ndarray, np.ndarray, np.ndarray]
    last_top: np.ndarray
    rows_drawn: np.ndarray
    columns_drawn: np.ndarray


def read_shaded_region(path: Path) -> ShadedRegion:
    """``region_map.render_region`` of ``path``, shaded (in the reader, so the shading of a
    world's regions is spread over the readers like their reading)."""
    rx, rz, colour, top, depth = render_region(path)
    present = top >= MIN_Y
    return ShadedRegion(rx, rz, shade(colour, top, depth), (colour[:1], top[:1], depth[:1]),
                        top[-1:].copy(), present.any(axis=1), present.any(axis=0))


def render_world(world: Path, workers: int = 1, starting_workers=contextlib.nullcontext,
                 start_method: str | None = None) -> np.ndarray:
    """The whole world's map as an (height, width, 3) uint8 array (north up), cropped to the
    chunks present: what ``RegionMosaic.image`` makes of its regions. ``starting_workers()``: a
    context manager the worker processes are started in (the command line's holds Ctrl-C back
    from them); ``start_method``: as for ``rendered_regions``."""
    paths = region_paths(world)
    coords = [region_coords_from_name(p) for p in paths]
    rx0, rz0 = min(c[0] for c in coords), min(c[1] for c in coords)
    side = REGION_SIZE_BLOCKS
    width = (max(c[0] for c in coords) - rx0 + 1) * side
    height = (max(c[1] for c in coords) - rz0 + 1) * side
    image = np.zeros((height, width, 3), dtype=np.uint8)
    rows_drawn, columns_drawn = np.zeros(height, bool), np.zeros(width, bool)
    regions: dict[tuple[int, int], ShadedRegion] = {}
    # the biggest files first: the last regions read are small, no reader idles long at the end
    biggest_first = sorted(paths, key=lambda p: p.stat().st_size, reverse=True)
    with _read_regions(biggest_first, read_shaded_region, workers, starting_workers,
                       start_method, ordered=False) as read:
        for region in read:          # placed while the others are still being read
            z0, x0 = (region.rz - rz0) * side, (region.rx - rx0) * side
            image[z0:z0 + side, x0:x0 + side] = region.pixels
            rows_drawn[z0:z0 + side] |= region.rows_drawn
            columns_drawn[x0:x0 + side] |= region.columns_drawn
            region.pixels = None
            regions[(region.rx, region.rz)] = region
    for (rx, rz), region in regions.items():
        north = regions.get((rx, rz - 1))
        if north is not None:        # the first row, shaded against the last row north of it
            colour, top, depth = region.first_row
            row = shade(np.concatenate([colour, colour]), np.concatenate([north.last_top, top]),
                        np.concatenate([depth, depth]))[1]
            image[(rz - rz0) * side, (rx - rx0) * side:(rx - rx0 + 1) * side] = row
    rows, columns = np.flatnonzero(rows_drawn), np.flatnonzero(columns_drawn)
    if len(rows) == 0:
        raise PreviewError(f"{world} has no blocks to draw")
    return image[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]


def downscale(image: np.ndarray, max_side: int = MAX_SIDE_PX) -> np.ndarray:
    """Average blocks of pixels so no side exceeds ``max_side``."""
    factor = scale_factor(image.shape[1], image.shape[0], max_side)
    return image if factor == 1 else average_squares(image, factor)


def reader_start_method() -> str:
    """How reader processes start: forked where the platform can and this process runs no
    other thread (a fork copies no thread, so a lock another thread held would stay held in
    the copy); else spawned. A forked reader has its modules already imported: a spawned one
    spends about 0.2 CPU-s importing them before it reads anything."""
    import multiprocessing
    import threading
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


def rendered_regions(paths: list[Path], workers: int, starting_workers=contextlib.nullcontext,
                     start_method: str | None = None):
    """A context manager: an iterator over ``render_region`` of each path, in order, read by
    ``workers`` processes started by ``start_method`` (default: ``reader_start_method()``), or
    in this one when 1."""
    return _read_regions(paths, render_region, workers, starting_workers, start_method)


@contextlib.contextmanager
def _read_regions(paths: list[Path], read, workers: int, starting_workers=contextlib.nullcontext,
                  start_method: str | None = None, ordered: bool = True):
    """``read`` of each path, in order (or as they are done), by ``workers`` processes."""
    if workers <= 1 or len(paths) <= 1:
        yield (read(p) for p in paths)
        return
    import multiprocessing
    context = multiprocessing.get_context(start_method or reader_start_method())
    pool = None
    try:
        with starting_workers():     # a stop signal held while starting is raised on leaving
            pool = context.Pool(min(workers, len(paths)))
        yield (pool.imap if ordered else pool.imap_unordered)(read, paths, chunksize=1)
    except BaseException:
        if pool is not None:         # interrupted: stop the readers now, not after the last
            _kill_readers(pool)
        raise
    pool.close()
    pool.join()


def _kill_readers(pool) -> None:
    """Kill the pool's processes and drop its own clean-up: ``Pool.terminate`` waits on queue
    locks, which a reader that died mid-write (a group Ctrl-C) holds for ever. The thread that
    replaces dead readers is stopped first, so none is started after the kill."""
    from multiprocessing.pool import TERMINATE
    pool._worker_handler._state = TERMINATE
    pool._worker_handler.join(2.0)
    for process in pool._pool:
        process.kill()
    for process in pool._pool:
        process.join()
    pool._terminate.cancel()


def write_preview(world: Path, output: Path, max_side: int = MAX_SIDE_PX, workers: int = 1,
                  starting_workers=contextlib.nullcontext,
                  mosaic: RegionMosaic | None = None) -> tuple[int, int]:
    """Render ``world`` to the PNG ``output``; returns its (width, height) in pixels.
    ``starting_workers``: as for ``render_world``; ``mosaic``: the world's map already put
    together while it was drawn (then nothing is read back)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if mosaic is None:
        return _write_streamed_preview(world, output, max_side, workers, starting_workers)
    image = downscale(mosaic.image(world), max_side)
    write_png(output, image)
    return image.shape[1], image.shape[0]


def _write_streamed_preview(world: Path, output: Path, max_side: int, workers: int,
                            starting_workers) -> tuple[int, int]:
    """``downscale(render_world(world))`` written to ``output`` with memory for a row of
    regions, not the world: the shaded regions wait in a temporary file beside ``output`` (3
    bytes a column) until the crop, hence the squares averaged, is known."""
    paths = region_paths(world)
    side = REGION_SIZE_BLOCKS
    region_bytes = side * side * 3
    regions: dict[tuple[int, int], tuple[int, ShadedRegion]] = {}
    rows_drawn: dict[int, np.ndarray] = {}
    columns_drawn: dict[int, np.ndarray] = {}
    with tempfile.TemporaryFile(dir=output.parent, prefix=f".{output.name}.") as store:
        biggest_first = sorted(paths, key=lambda p: p.stat().st_size, reverse=True)
        with _read_regions(biggest_first, read_shaded_region, workers, starting_workers,
                           ordered=False) as read:
            for region in read:
                store.write(np.ascontiguousarray(region.pixels).data)
                region.pixels = None
                regions[(region.rx, region.rz)] = (len(regions), region)
                rows_drawn[region.rz] = rows_drawn.get(region.rz, False) | region.rows_drawn
                columns_drawn[region.rx] = columns_drawn.get(region.rx, False) | region.columns_drawn
        z0, z1 = _drawn_span(rows_drawn, side)
        x0, x1 = _drawn_span(columns_drawn, side)
        if z0 is None or x0 is None:
            raise PreviewError(f"{world} has no blocks to draw")
        factor = scale_factor(x1 - x0, z1 - z0, max_side)
        size = ((x1 - x0) // factor, (z1 - z0) // factor)

        def region_pixels(rx: int, rz: int) -> np.ndarray | None:
            found = regions.get((rx, rz))
            if found is None:
                return None
            store.seek(found[0] * region_bytes)
            pixels = np.frombuffer(store.read(region_bytes), np.uint8).reshape(side, side, 3).copy()
            north = regions.get((rx, rz - 1))
            if north is not None:        # the first row, shaded against the last row north of it
                colour, top, depth = found[1].first_row
                pixels[0] = shade(np.concatenate([colour, colour]),
                                  np.concatenate([north[1].last_top, top]),
                                  np.concatenate([depth, depth]))[1]
            return pixels

        def strips():
            for rz in range(z0 // side, (z1 - 1) // side + 1):
                top, bottom = max(z0, rz * side), min(z1, (rz + 1) * side)
                strip = np.zeros((bottom - top, x1 - x0, 3), dtype=np.uint8)
                for rx in range(x0 // side, (x1 - 1) // side + 1):
                    pixels = region_pixels(rx, rz)
                    if pixels is None:
                        continue
                    ax0, ax1 = max(x0, rx * side), min(x1, (rx + 1) * side)
                    strip[:, ax0 - x0:ax1 - x0] = pixels[top - rz * side:bottom - rz * side,
                                                         ax0 - rx * side:ax1 - rx * side]
                yield strip

        with PngWriter(output, *size) as png:
            for band in averaged_bands(strips(), factor) if factor > 1 else strips():
                png.write(band)
    return size


def _drawn_span(drawn: dict[int, np.ndarray], side: int) -> tuple[int | None, int | None]:
    """The first and past-the-last block drawn along one axis, from each region row's (or
    column's) drawn flags keyed by its region coordinate."""
    first = last = None
    for coord in sorted(drawn):
        found = np.flatnonzero(drawn[coord])
        if len(found):
            first = coord * side + int(found[0]) if first is None else first
            last = coord * side + int(found[-1]) + 1
    return first, last


def write_world_tiles(world: Path, out: Path, workers: int = 1,
                      starting_workers=contextlib.nullcontext) -> dict:
    """Write the tile pyramid of ``world`` to the folder ``out`` (see ``map_tiles``); returns
    its description. ``starting_workers``: as for ``render_world``."""
    paths = region_paths(world)
    with rendered_regions(paths, workers, starting_workers) as regions:
        return write_tiles([region_coords_from_name(p) for p in paths], regions, Path(out))
