"""A generator for slot tests, named ``tests.slot_probe:describe_slot``: it imports what a real
slot imports (the real generator) and returns one chunk whose bytes describe the slot process
(the modules it has loaded, the BLAS thread settings it runs with) as zlib-compressed JSON."""

from __future__ import annotations

import json
import os
import sys
import zlib

import arnisd.world.generate  # noqa: F401  (a real slot's imports)

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def describe_slot(elements, projection, owned, settings, **extra):
    doc = {"modules": sorted(sys.modules),
           "env": {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES},
           "pid": os.getpid()}
    return [(0, 0, zlib.compress(json.dumps(doc).encode()))]
