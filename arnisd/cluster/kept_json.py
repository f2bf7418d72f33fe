"""Writing what a coordinator learns (cost model, calibrations, worker speeds) to its JSON file.

Each is an estimate that only speeds work up, so a file that cannot be written is logged and
the coordinator goes on; a reader never sees half a file (written beside it, then renamed).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger("arnisd.cluster.kept_json")


def save_kept_json(path: Path, doc: dict, what: str) -> None:
    """Replace ``path`` with ``doc`` as JSON; ``what`` names it in the warning if that fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(doc, sort_keys=True))
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("%s: %s not saved (%s)", path, what, exc)
