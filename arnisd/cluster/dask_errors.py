"""How a job on a Dask cluster can break off, as the command line and the workers name it.

Kept apart from ``dask_cluster`` so that ``generate`` knows them without loading Dask.
"""

from __future__ import annotations

from arnisd.errors import UserError


class DaskSchedulerLost(UserError):
    """The Dask scheduler went away mid-job; the journal keeps what was made."""


class DaskWorkerRefused(UserError):
    """A Dask worker cannot run arnisd's tasks (another arnisd version, or none)."""
