"""Tile generators for the status-page tests of a real local cluster.

``planned_generate``: each tile does what the plan in ``$ARNISD_TEST_PLAN`` says (JSON
{"x0,z0": "fail" | "hang"}; others succeed at once); "hang" waits until the file
``$ARNISD_TEST_RELEASE`` exists, so the test decides when the job may finish. Chunks come from
``fake_generators.fake_generate``. ``held_generate``: the real generator, holding every tile
after the first N (see there).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from fake_generators import fake_generate


def planned_generate(elements, projection, owned, settings):
    plan = json.loads(os.environ.get("ARNISD_TEST_PLAN", "{}"))
    action = plan.get(f"{owned.x0},{owned.z0}")
    if action == "fail":
        raise RuntimeError("planned failure")
    if action == "hang":
        release = Path(os.environ["ARNISD_TEST_RELEASE"])
        deadline = time.monotonic() + 120
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return fake_generate(elements, projection, owned, settings)


def held_generate(*args, map_piece=None, **kwargs):
    """The real generator, except that every tile after the first ``$ARNISD_TEST_HOLD_AFTER``
    to start waits for ``$ARNISD_TEST_RELEASE`` first: the job stops mid-way with that many
    tiles made and its slots busy. Tiles take their turn numbers by creating files in
    ``$ARNISD_TEST_HOLD_DIR`` (shared by every worker process); a tile leased again (its
    worker was thought lost) keeps its turn. The last tile before the hold
    first sleeps ``$ARNISD_TEST_HOLD_LAST_DELAY_S``. ``map_piece`` (when the job
    draws a map) goes to the real generator as it would without the hold."""
    from arnisd.cluster.tile_compute import DEFAULT_GENERATOR, resolve_generator
    turns = Path(os.environ["ARNISD_TEST_HOLD_DIR"])
    owned = args[2]
    mine = turns / f"tile_{owned.x0}_{owned.z0}"      # a tile leased again keeps its turn
    if mine.exists():
        turn = int(mine.read_text())
    else:
        turn = 0
        while True:
            try:
                (turns / str(turn)).open("x").close()
                break
            except FileExistsError:
                turn += 1
        mine.write_text(str(turn))
    made_first = int(os.environ["ARNISD_TEST_HOLD_AFTER"])
    if turn == made_first - 1:
        time.sleep(float(os.environ.get("ARNISD_TEST_HOLD_LAST_DELAY_S", "0")))
    if turn >= made_first:
        release = Path(os.environ["ARNISD_TEST_RELEASE"])
        deadline = time.monotonic() + 120
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    if map_piece is not None:
        kwargs["map_piece"] = map_piece
    return resolve_generator(DEFAULT_GENERATOR)(*args, **kwargs)
