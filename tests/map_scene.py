"""A job's map half drawn, for the map endpoints and the page: the real pyramid of a finished
world (``arnisd preview --tiles``) with everything outside the committed tiles taken away, as
the map directory of a job in progress holds it (tiles not drawn yet are absent; a pyramid tile
that is partly drawn is transparent where nothing is drawn yet).

``job_tile_rows`` gives the job's tiles as the status document lists them, so a fake provider
shows the tiles that the map was cut along."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

TILE_PX = 256
OVERVIEW_MAX_PX = 4096


def job_tile_rows(bbox_text: str, tile_size_deg: float, states: list[str]) -> list[dict]:
    """The tiles ``make_tiles`` cuts the job into, each with the state dealt from ``states``
    (coordinator names, in the tiles' row-major order)."""
    from arnisd.cluster.tiling import make_tiles
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    job = JobSpec(bbox=BBox.parse(bbox_text), output=Path("unused"), tile_size_deg=tile_size_deg)
    tiles = make_tiles(job.bbox, job.settings, job.tile_size_deg)
    assert len(states) == len(tiles), f"{len(states)} states for {len(tiles)} tiles"
    return [{"tile": t.tile_id, "state": state, "attempt": 0 if state == "pending" else 1,
             "failures": 0, "error": None, "owned_blocks": t.owned.as_list(),
             "bbox": t.bbox.as_dict()} for t, state in zip(tiles, states)]


def drawn_mask(description: dict, zoom: int, boxes: list[list[int]]) -> np.ndarray:
    """Which pixels of the whole pyramid level ``zoom`` lie in the blocks ``boxes``
    ([x0, z0, x1, z1] each), as (rows, columns) of booleans."""
    shrink = 2 ** (description["max_zoom"] - zoom)
    columns = -(-description["width_blocks"] // (TILE_PX * shrink)) * TILE_PX
    rows = -(-description["height_blocks"] // (TILE_PX * shrink)) * TILE_PX
    mask = np.zeros((rows, columns), dtype=bool)
    ox, oz = description["origin_block_x"], description["origin_block_z"]
    for x0, z0, x1, z1 in boxes:
        mask[(z0 - oz) // shrink:-(-(z1 - oz) // shrink), (x0 - ox) // shrink:-(-(x1 - ox) // shrink)] = True
    return mask


def stitch(map_dir: Path, zoom: int) -> np.ndarray:
    """Level ``zoom`` of a pyramid as one RGBA image (absent tiles transparent)."""
    description = json.loads((map_dir / "tiles.json").read_text())
    shape = drawn_mask(description, zoom, []).shape
    image = np.zeros((*shape, 4), dtype=np.uint8)
    for path in (map_dir / str(zoom)).glob("*/*.png"):
        x, y = int(path.parent.name), int(path.stem)
        with Image.open(path) as tile:
            image[y * TILE_PX:(y + 1) * TILE_PX, x * TILE_PX:(x + 1) * TILE_PX] = np.asarray(tile.convert("RGBA"))
    return image


def partial_map(full_map: Path, out: Path, committed_boxes: list[list[int]]) -> Path:
    """A copy of the pyramid ``full_map`` drawn only inside ``committed_boxes``, plus its
    ``overview.png`` (the deepest level, halved until it fits 4,096 px); returns ``out``."""
    description = json.loads((full_map / "tiles.json").read_text())
    out.mkdir(parents=True)
    shutil.copy(full_map / "tiles.json", out / "tiles.json")
    for zoom in range(description["max_zoom"] + 1):
        mask = drawn_mask(description, zoom, committed_boxes)
        for path in (full_map / str(zoom)).glob("*/*.png"):
            x, y = int(path.parent.name), int(path.stem)
            window = mask[y * TILE_PX:(y + 1) * TILE_PX, x * TILE_PX:(x + 1) * TILE_PX]
            if not window.any():
                continue                           # not drawn yet: absent
            with Image.open(path) as tile:
                pixels = np.asarray(tile.convert("RGBA")).copy()
            pixels[~window] = 0
            target = out / str(zoom) / str(x) / f"{y}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, "RGBA").save(target)
    overview = stitch(out, description["max_zoom"])
    while max(overview.shape[:2]) > OVERVIEW_MAX_PX:
        overview = overview[::2, ::2]
    Image.fromarray(overview, "RGBA").save(out / "overview.png")
    return out
