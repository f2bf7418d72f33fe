"""Cut the calibration tile `arnisd bench` runs from the bundled extract's densest area.

The tile is the 16 x 16 chunks of the bundled extract's job (its own bounds, scale 1) whose
estimated cost (``arnisd.cluster.cost_tiling``) is highest; what is shipped is its work unit's
geometry and its packed extract, as a lease would carry them. Run from the repository:
``python bench/make_calibration_tile.py`` (writes ``arnisd/calibration/dense_tile.msgpack``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgpack
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIDE_CHUNKS = 16
BUNDLED_BBOX = "60.52,26.93,60.54,26.97"


def main() -> None:
    from arnisd.cluster.cost_tiling import CostGrid, _Summed
    from arnisd.cluster.extracts import FileExtracts
    from arnisd.cluster.tile_cost import DEFAULT
    from arnisd.cluster.tiling import tiles_of_chunk_rects
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from arnisd.osm.element_costs import element_cost_rows
    from arnisd.osm.reader import read_osm_file
    elements = read_osm_file(REPO / "data" / "kouvola.osm.pbf").elements
    job = JobSpec(BBox.parse(BUNDLED_BBOX), Path("unused"))
    grid = CostGrid(job.projection)
    grid.add(element_cost_rows(elements))
    summed = _Summed(grid, DEFAULT, False)
    best = max(((summed.sums(x, z, x + SIDE_CHUNKS, z + SIDE_CHUNKS)[3], x, z)
                for z in range(0, grid.nz - SIDE_CHUNKS) for x in range(0, grid.nx - SIDE_CHUNKS)))
    _, cx, cz = best
    world = job.projection.world_chunk_rect()
    rect = (cx, cz, cx + SIDE_CHUNKS, cz + SIDE_CHUNKS)
    # the tiling helper wants the whole world covered: the tile, and the rest around it
    others = {"w": (0, 0, cx, world.z1 // 16), "e": (rect[2], 0, world.x1 // 16, world.z1 // 16),
              "n": (cx, 0, rect[2], cz), "s": (cx, rect[3], rect[2], world.z1 // 16)}
    rects = {"calibration": rect, **{k: r for k, r in others.items() if r[0] < r[2] and r[1] < r[3]}}
    tile = next(t for t in tiles_of_chunk_rects(job.bbox, job.settings, rects)
                if t.tile_id == "calibration")
    extract = FileExtracts(elements, job.projection)(tile).elements
    doc = {"job_bbox": job.bbox.as_dict(), "owned_blocks": tile.owned.as_list(),
           "bbox": tile.bbox.as_dict(), "extract": extract}
    out = REPO / "arnisd" / "calibration" / "dense_tile.msgpack"
    out.write_bytes(msgpack.packb(doc, use_bin_type=True))
    print(f"chunks {rect}, estimated {best[0]:.2f} s, {len(extract)} bytes of extract -> {out}")
    assert np.isfinite(best[0])


if __name__ == "__main__":
    main()
