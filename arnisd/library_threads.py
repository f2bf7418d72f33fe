"""One thread for the numerical libraries' own pools, in every arnisd process.

arnisd's parallelism is its processes (a slot computes one tile on one core; the coordinator
and the worker daemons mostly wait on sockets). OpenBLAS alone starts a thread per core once
numpy is loaded, and those threads spin for about 0.1 s of CPU in every process, competing
with the slots. The variables only take effect before the library is loaded, and processes
started afterwards inherit them; a value already in the environment is kept.
"""

from __future__ import annotations

import os

LIBRARY_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def one_library_thread() -> None:
    """Ask the numerical libraries for a single thread unless the environment says otherwise."""
    for name in LIBRARY_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
