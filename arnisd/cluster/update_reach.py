"""Which tiles of a world an OSM change file can reach: how an ``update --osc`` costs what the
change costs rather than what the file costs.

Without this, an update indexes the changed file whole and cuts every tile's extract to
compare its digest with the manifest's. When the index of the world's recorded input is still
in the index folder (it is named by the digest the manifest records), the changed file's index
is that one patched instead (``arnisd.osm.index_patch``: the changed objects, the ways and
relations that reference them, the guessed heights near changed buildings), and only the tiles
whose extract box meets a row that differs (old or new bounds) can have another extract; a
changed coastline that reaches the job's coast box reaches every tile (each extract carries
it). Every other tile's extract is the one the manifest records, so it is not cut again.
Without that index (another index folder, a world made from Overpass), ``None``: the update
takes the whole way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arnisd.anvil.manifest import Manifest
from arnisd.cluster.extracts import coast_box_e7, tile_box_e7
from arnisd.cluster.tiling import Tile
from arnisd.geo.projection import LocalProjection
from arnisd.job import JobSpec
from arnisd.osm.file_index import FileIndex, file_digest, index_path_for, remove_older_indexes
from arnisd.osm.index_patch import ChangedIds, IndexPatch, index_patch, write_patched_index


@dataclass(slots=True)
class ChangeReach:
    """The changed file's index (the old one patched) and how the rows differ."""

    index: FileIndex
    patch: IndexPatch

    def tiles(self, tiles: Sequence[Tile], projection: LocalProjection) -> set[str]:
        """The ids of the ``tiles`` whose extract the change can reach."""
        coast = np.array(coast_box_e7(projection), np.int64)
        if any(_meets(np.array([box], np.int64), coast).any()
               for box in self.patch.coastline_boxes_e7):
            return {t.tile_id for t in tiles}
        boxes = np.array(self.patch.boxes_e7, np.int64).reshape(-1, 4)
        return {t.tile_id for t in tiles
                if _meets(boxes, np.array(tile_box_e7(projection, t), np.int64)).any()}


def _meets(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Per row of ``boxes`` (min_lat, min_lng, max_lat, max_lng), whether it meets ``box``."""
    return ((boxes[:, 0] <= box[2]) & (boxes[:, 2] >= box[0])
            & (boxes[:, 1] <= box[3]) & (boxes[:, 3] >= box[1]))


def reach_of_changes(manifest: Manifest, spec: JobSpec, changes: Path, index_dir: Path,
                     note: Callable[[str], None] = lambda message: None) -> ChangeReach | None:
    """The changed input's index patched from the index of the world's recorded input (see
    the module's docstring), or None when that index is not in ``index_dir``."""
    recorded = manifest.input
    if recorded.get("kind") != "file" or spec.osm_file is None \
            or Path(spec.osm_file).suffix.lower() == ".json":
        return None
    try:
        old = FileIndex(index_path_for(recorded["digest"], Path(index_dir)))
    except sqlite3.DatabaseError:
        note(f"no index of the world's input in {index_dir}: indexing "
             f"{Path(spec.osm_file).name} whole")
        return None
    new_file = Path(spec.osm_file)
    try:
        patch = index_patch(old, new_file, ChangedIds.of_file(Path(changes)),
                            scratch_dir=Path(index_dir))
        index = write_patched_index(old, patch, new_file, file_digest(new_file),
                                    Path(index_dir))
    finally:
        old.close()
    remove_older_indexes(Path(index_dir), new_file, index.path)
    note(f"{Path(changes).name}: {patch.rows_changed} index rows changed; the index of "
         f"{Path(spec.osm_file).name} is the world's input's, patched")
    return ChangeReach(index, patch)
