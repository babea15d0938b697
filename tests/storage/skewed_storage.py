"""The storage calls a worker makes about leases, run in a child whose clock is wrong.

``python -m tests.storage.skewed_storage DATABASE_URL OPERATION RUN_ID`` (under libfaketime, see
``tests.skewed_clock``) prints one JSON object: the child's own idea of now and what the
operation did.

- ``claim``: ``claim_run`` as a worker's job does; ``attempt`` is the attempt taken, or null.
- ``claim_and_renew``: a claim, then a heartbeat's ``renew_lease``; the lease's end it got back.
- ``reconcile``: one reconciler pass over leases (``runs_to_redispatch``, then
  ``requeue_expired`` for every RUNNING job it returned, as ``worker.cluster.reconciler`` does);
  ``requeued`` lists the run ids that moved on.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from storage import Database, Repository
from storage.records import RunStatus

LEASE_TTL_S = 60.0


def main(url: str, operation: str, run_id: int) -> dict[str, object]:
    """Run ``operation`` on ``run_id`` with the repository a worker builds (no clock given)."""
    repository = Repository(Database(url))
    result: dict[str, object] = {"child_now": datetime.now(UTC).isoformat()}
    if operation in ("claim", "claim_and_renew"):
        claimed = repository.claim_run(
            run_id, owner="skewed:1:job", worker_host="skewed", lease_ttl_s=LEASE_TTL_S
        )
        result["attempt"] = None if claimed is None else claimed.attempt
        if claimed is not None and operation == "claim_and_renew":
            ack = repository.renew_lease(run_id, claimed.attempt, LEASE_TTL_S)
            result["lease_expires_at"] = ack.lease_expires_at.isoformat()
    elif operation == "reconcile":
        lost = repository.runs_to_redispatch(redispatch_after_s=3600.0)
        running = [job for job in lost if job.status is RunStatus.RUNNING]
        moved = [repository.requeue_expired(job.id) for job in running]
        result["requeued"] = [job.id for job in moved if job.status is not RunStatus.RUNNING]
    else:
        raise SystemExit(f"unknown operation {operation!r}")
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
