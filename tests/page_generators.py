"""A tile generator for the status-page test of a real local cluster: each tile does what the
plan in ``$ARNISD_TEST_PLAN`` says (JSON {"x0,z0": "fail" | "hang"}; others succeed at once).

"hang" waits until the file ``$ARNISD_TEST_RELEASE`` exists, so the test decides when the
job may finish. Chunks come from ``fake_generators.fake_generate``.
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
