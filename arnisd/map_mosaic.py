"""A job's map put together from its tiles' pieces (``map_piece``) as the tiles are committed.

The map lives in one folder, the layout ``map_tiles`` writes for ``arnisd preview --tiles``
(``tiles.json`` from the start, with the job's whole extent, and the pyramid ``Z/X/Y.png``),
plus ``overview.png`` (at most ``MAX_SIDE_PX`` a side), refreshed every few seconds while the
job runs and someone watches, and made exactly at the end: then it equals ``arnisd preview`` of
the finished world. A map no one watches writes only its pieces until the end.

Shading looks at the row north of each column, which for a tile's first row is another
tile's last. A piece arrives with its first row shaded level; when the tile north of it is
known (now, or once it comes) that row is shaded again against it. Each piece is kept in
``pieces/`` until the job ends, so a resumed job draws its committed tiles again without
making them again.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from arnisd.anvil.grid import REGION_SIZE_BLOCKS
from arnisd.geo.projection import BlockRect
from arnisd.map_piece import MapPiece, decode_piece
from arnisd.map_overview import overview_from_pieces
from arnisd.map_pyramid import MapLayers, Pyramid, overview_size
from arnisd.png import DEFAULT_LEVEL, PngWriter
from arnisd.preview import MIN_Y

log = logging.getLogger("arnisd.map_mosaic")

MAX_SIDE_PX = 4096
OVERVIEW_NAME = "overview.png"
REFRESH_S = 3.0                 # the least time between two refreshes of the files
MAX_DIRTY_TILES = 64            # pyramid tiles held in memory before they are written anyway
VIEWED_NAME = ".viewed"         # touched whenever someone watches the job (``mark_viewed``)
VIEW_WINDOW_S = 30.0            # watched this recently: the map's files are kept up to date


def mark_viewed(directory: Path) -> None:
    """Someone watches the job (its page, its status, its map): keep the map's files up to
    date for a while. Unwatched, a map is only written when its held tiles must be and at the
    end: the refreshes cost the coordinator about as much as the rest of its work."""
    try:
        (Path(directory) / VIEWED_NAME).touch()
    except OSError:
        pass


def region_extent(rects) -> BlockRect:
    """The regions' rect covering ``rects`` (the pyramid's origin is a region corner, as
    ``map_tiles`` puts it for the world's region files)."""
    side = REGION_SIZE_BLOCKS
    x0 = min(r.x0 for r in rects) // side * side
    z0 = min(r.z0 for r in rects) // side * side
    x1 = -(-max(r.x1 for r in rects) // side) * side
    z1 = -(-max(r.z1 for r in rects) // side) * side
    return BlockRect(x0, z0, x1, z1)


def _file_name(tile_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tile_id)
    return f"{safe}.piece"


class MapMosaic:
    """The map of a job whose tiles own ``tiles`` ({tile id: owned BlockRect}), in
    ``directory``. ``start()`` (a fresh job) or ``resume(committed)``, then ``add`` per
    committed tile, ``finish()`` at the end. ``refresh_s``: how often the files are brought up
    to date while the job runs (None: a map no one looks at before the end, whose overview
    alone is wanted: nothing is drawn, the overview is summed from the kept pieces at the end,
    see ``map_overview``). ``lazy``: a map that is dropped with the job once it is whole (a
    command-line run's) draws nothing either until someone first watches (``mark_viewed``):
    then the pieces so far are drawn on the PNG pyramid, and it is kept browsable."""

    def __init__(self, directory: Path, tiles: dict[str, BlockRect],
                 refresh_s: float | None = REFRESH_S, lazy: bool = False) -> None:
        self.directory = Path(directory)
        self.tiles = tiles
        extent = region_extent(tiles.values())
        browsable = refresh_s is not None and not lazy
        self.pyramid: MapLayers = (Pyramid if browsable else MapLayers)(self.directory, extent)
        self.refresh_s = refresh_s
        self.drawn: dict[str, MapPiece] = {}       # the pieces drawn, their pixels dropped
        self._north_of: dict[int, list[str]] = {}  # z1 -> tiles ending there
        self._south_of: dict[int, list[str]] = {}  # z0 -> tiles starting there
        for tile_id, rect in tiles.items():
            self._north_of.setdefault(rect.z1, []).append(tile_id)
            self._south_of.setdefault(rect.z0, []).append(tile_id)
        self._box: BlockRect | None = None
        self._refreshed_at = time.monotonic()
        self._refresh_cost_s = 0.0

    @property
    def pieces_dir(self) -> Path:
        return self.directory / "pieces"

    def start(self) -> None:
        """A fresh map: whatever an earlier run left is removed, ``tiles.json`` written."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self.pieces_dir.mkdir(parents=True)
        self._write_description()

    def resume(self, committed: list[str]) -> list[str]:
        """Draw the kept pieces of ``committed`` tiles again, one at a time, on a fresh
        pyramid (other pieces are dropped); returns the tiles whose piece is not kept (their
        map stays empty)."""
        kept = {self.pieces_dir / _file_name(t): t for t in committed}
        if self.pieces_dir.is_dir():
            for path in self.pieces_dir.iterdir():
                if path not in kept:
                    path.unlink()
        for child in self.directory.iterdir() if self.directory.is_dir() else ():
            if child.is_dir() and child != self.pieces_dir:
                shutil.rmtree(child)
            elif not child.is_dir():
                child.unlink()
        self.pieces_dir.mkdir(parents=True, exist_ok=True)
        self._write_description()
        missing = []
        for path, tile_id in sorted(kept.items()):
            if path.exists():
                self.add(tile_id, path.read_bytes(), keep=False)
            else:
                missing.append(tile_id)
        return missing

    def _write_description(self) -> None:
        path = self.directory / "tiles.json"
        tmp = path.with_name(".tiles.json.tmp")
        tmp.write_text(json.dumps(self.pyramid.description(), indent=1) + "\n")
        tmp.replace(path)

    def add(self, tile_id: str, data: bytes, keep: bool = True) -> bool:
        """Draw a committed tile's piece (once per tile; kept in ``pieces/`` for a resume if
        ``keep``); False if it is not one for the tile (logged, nothing drawn)."""
        rect = self.tiles.get(tile_id)
        try:
            if rect is None:
                raise ValueError("not a tile of this job")
            piece = decode_piece(data, rect)
            pixels, drawn = piece.pixels()
        except ValueError as exc:
            log.warning("tile %s: map piece not drawn: %s", tile_id, exc)
            return False
        if tile_id in self.drawn:
            log.warning("tile %s: map piece drawn already; ignored", tile_id)
            return False
        if keep:
            path = self.pieces_dir / _file_name(tile_id)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        self.pyramid.paste(rect.x0, rect.z0, pixels, drawn)
        # its first row again, shaded against the tiles north of it (those drawn so far)
        self.pyramid.paste(rect.x0, rect.z0, piece.first_row_under(self._north_top(rect))[None],
                           drawn[:1])
        self.drawn[tile_id] = replace(piece, rgb=b"", drawn=b"")   # its edges are what stays
        log.debug("map: drew tile %s", tile_id)
        for south in self._south_of.get(rect.z1, ()):
            if south in self.drawn and _overlap(self.tiles[south], rect):
                self._redraw_first_row(south)
        if piece.box is not None:
            self._box = piece.box if self._box is None else _union(self._box, piece.box)
        self._maybe_refresh()
        return True

    def _north_to_south(self, tile_ids) -> list[str]:
        return sorted(tile_ids, key=lambda t: (self.tiles[t].z0, self.tiles[t].x0))

    def _kept_pixels(self, tile_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(pixels, drawn mask) of a drawn tile read back from its kept piece, its first row
        shaded against the tiles north of it drawn so far."""
        rect = self.tiles[tile_id]
        piece = decode_piece((self.pieces_dir / _file_name(tile_id)).read_bytes(), rect)
        pixels, drawn = piece.pixels()
        pixels = np.array(pixels)
        pixels[0] = piece.first_row_under(self._north_top(rect))
        return pixels, drawn

    def _north_top(self, rect: BlockRect) -> np.ndarray:
        """Heights of the row north of ``rect`` where its tiles are drawn (else MIN_Y - 1)."""
        north = np.full(rect.width, MIN_Y - 1, dtype=np.int16)
        for tile_id in self._north_of.get(rect.z0, ()):
            other = self.tiles[tile_id]
            piece = self.drawn.get(tile_id)
            if piece is None or not _overlap(other, rect):
                continue
            x0, x1 = max(rect.x0, other.x0), min(rect.x1, other.x1)
            north[x0 - rect.x0:x1 - rect.x0] = piece.last_top[x0 - other.x0:x1 - other.x0]
        return north

    def _redraw_first_row(self, tile_id: str) -> None:
        rect, piece = self.tiles[tile_id], self.drawn[tile_id]
        row = piece.first_row_under(self._north_top(rect))
        self.pyramid.paste(rect.x0, rect.z0, row[None], (piece.first_top >= MIN_Y)[None])

    def _first_watched(self) -> bool:
        """A lazy map still raw that someone now watches."""
        return self.refresh_s is not None and not self.pyramid.browsable and self._viewed_recently()

    def _maybe_refresh(self) -> None:
        if self._first_watched():
            self._become_browsable()
            return
        now = time.monotonic()
        # a refresh costs about as much as the last one: keep it under a tenth of the time
        due = (self.refresh_s is not None
               and now - self._refreshed_at >= max(self.refresh_s, 10 * self._refresh_cost_s)
               and self._viewed_recently())
        if due or self.pyramid.dirty_tiles > MAX_DIRTY_TILES:
            self.refresh()

    def _become_browsable(self) -> None:
        """Someone watches a lazy map: the pieces drawn so far are drawn again on the PNG
        pyramid, every zoom."""
        self.pyramid = Pyramid(self.directory, self.pyramid.extent)
        for tile_id in self._north_to_south(self.drawn):
            rect = self.tiles[tile_id]
            self.pyramid.paste(rect.x0, rect.z0, *self._kept_pixels(tile_id))
            if self.pyramid.dirty_tiles > MAX_DIRTY_TILES:
                self.pyramid.flush()
        self.refresh()
        log.debug("map: made browsable for a watcher")

    def _viewed_recently(self) -> bool:
        try:
            return time.time() - (self.directory / VIEWED_NAME).stat().st_mtime < VIEW_WINDOW_S
        except OSError:
            return False

    def tick(self) -> None:
        """Time passed with no commit: write what is drawn but not yet written, once due (a
        job whose last tiles are slow must not leave its newest tiles unwritten)."""
        if self.pyramid.dirty_tiles or self._first_watched():
            self._maybe_refresh()

    def refresh(self) -> None:
        """Write what changed (the pyramid, then a quick overview from a zoom that fits)."""
        started = time.monotonic()
        self.pyramid.flush()
        if self._box is not None and self.pyramid.browsable:
            self._write_quick_overview()
        self._refreshed_at = time.monotonic()
        self._refresh_cost_s = self._refreshed_at - started

    def _write_quick_overview(self) -> None:
        """The drawn box at the deepest zoom whose picture of it fits ``MAX_SIDE_PX``, written
        a row of pyramid tiles at a time."""
        box, pyramid = self._box, self.pyramid
        zoom, scale = pyramid.deepest, 1
        while max(box.width, box.depth) // scale > MAX_SIDE_PX:
            zoom, scale = zoom - 1, scale * 2
        x0, z0 = (box.x0 - pyramid.extent.x0) // scale, (box.z0 - pyramid.extent.z0) // scale
        x1 = -(-(box.x1 - pyramid.extent.x0) // scale)
        z1 = -(-(box.z1 - pyramid.extent.z0) // scale)
        with PngWriter(self.directory / OVERVIEW_NAME, x1 - x0, z1 - z0, level=1) as png:
            for band in pyramid.bands(zoom, x0, z0, x1, z1):
                png.write(band)

    @property
    def complete(self) -> bool:
        return len(self.drawn) == len(self.tiles)

    def finish(self) -> tuple[int, int] | None:
        """The job is over: everything written and the exact overview made (when every tile
        was drawn, the pieces kept for a resume are removed); returns the overview's (width,
        height), None if nothing was drawn."""
        self.pyramid.flush()
        if self._box is None:
            return None
        width, height = overview_size(self._box, MAX_SIDE_PX)
        if self.pyramid.browsable:
            bands = self.pyramid.overview_bands(self._box, MAX_SIDE_PX)
        else:
            pieces = [(self.tiles[t], lambda t=t: self._kept_pixels(t)[0])
                      for t in self._north_to_south(self.drawn)]
            bands = overview_from_pieces(pieces, self._box, MAX_SIDE_PX)
        # written once, kept: squeezed as `arnisd preview` squeezes its own
        with PngWriter(self.directory / OVERVIEW_NAME, width, height, DEFAULT_LEVEL) as png:
            for band in bands:
                png.write(band)
        if self.complete:
            shutil.rmtree(self.pieces_dir, ignore_errors=True)     # no resume needs them now
        return width, height

    def copy_overview(self, path: Path) -> bool:
        """Copy the finished overview to ``path`` (through a temporary name) if it is the
        whole world's map; returns whether it was."""
        overview = self.directory / OVERVIEW_NAME
        if not self.complete or not overview.is_file():
            return False
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        shutil.copyfile(overview, tmp)
        tmp.replace(path)
        return True


def _overlap(a: BlockRect, b: BlockRect) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1


def _union(a: BlockRect, b: BlockRect) -> BlockRect:
    return BlockRect(min(a.x0, b.x0), min(a.z0, b.z0), max(a.x1, b.x1), max(a.z1, b.z1))
