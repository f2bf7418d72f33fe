"""Applying an OSM change file (``.osc``, ``.osc.gz``, ``.osc.bz2``) to a data file.

pyosmium's merging reader takes the changes, then streams the base file through them (objects
the changes create, modify or delete come out changed, in the file's order); the result is
written to a temporary file beside the output and renamed into place, so a failed merge
leaves nothing half-written. The result keeps the base file's header (its bounds), so it reads
as the base would with the changes in it.
"""

from __future__ import annotations

import os
from pathlib import Path

from arnisd.osm.reader import OsmInputError

CHANGE_SUFFIXES = (".osc", ".osc.gz", ".osc.bz2")


def apply_changes(base: Path, changes: Path, out: Path) -> Path:
    """Write ``base`` with ``changes`` applied to ``out`` (its format from its name)."""
    import osmium
    base, changes, out = Path(base), Path(changes), Path(out)
    if not changes.name.endswith(CHANGE_SUFFIXES):
        raise OsmInputError(f"{changes}: a change file is .osc, .osc.gz or .osc.bz2")
    for path in (base, changes):
        if not path.is_file():
            raise OsmInputError(f"{path} does not exist or is not a file")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp{''.join(out.suffixes)}")
    merger = osmium.MergeInputReader()
    try:
        merger.add_file(str(changes))
        reader = osmium.io.Reader(str(base))
        try:
            # the base's header keeps its bounds: areas cut by them are closed along them
            writer = osmium.io.Writer(str(tmp), reader.header())
            try:
                merger.apply_to_reader(reader, writer, with_history=False)
            finally:
                writer.close()
        finally:
            reader.close()
        os.replace(tmp, out)
    except RuntimeError as exc:          # libosmium's parse and format errors
        raise OsmInputError(f"cannot apply {changes} to {base}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out
