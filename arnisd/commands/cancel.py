"""`arnisd cancel JOB`: stop a queued or running job on a running coordinator."""

from __future__ import annotations

from urllib.parse import quote

from arnisd.errors import UserError
from arnisd.service.client import (
    CoordinatorRefused, ShimClient, add_connection_arguments, resolve_target)

NAME = "cancel"
HELP = "cancel a queued or running job"


def add_arguments(p) -> None:
    p.add_argument("job_id", metavar="JOB", help="the id `arnisd submit` printed")
    add_connection_arguments(p, token=True)


def run(args) -> int:
    client = ShimClient(resolve_target(args), timeout_s=args.timeout)
    try:
        client.post(f"/jobs/{quote(args.job_id, safe='')}/cancel")
    except CoordinatorRefused as exc:
        if exc.status == 404:
            raise UserError(f"no job {args.job_id} on the coordinator") from None
        if exc.status == 409:
            raise UserError(f"job {args.job_id} has already finished") from None
        raise
    print(f"cancelled {args.job_id}")
    return 0
