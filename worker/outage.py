"""A job whose lease ran out while the database was away: give the run back, attempt unspent.

A database outage is not the run's fault. A job waits it out for as long as its lease lasts
(``worker.lease.LeaseHeartbeat.write``); past that another worker may take the run over, so the
job stops training and keeps what it trained in memory. When the database answers again the job
writes what the outage held back and hands the run back (``Repository.hand_back_run``): QUEUED,
checkpointed where training stopped, its attempt given back so that it does not count against
``max_attempts``. If a newer attempt took the run over meanwhile, fencing refuses both writes and
the job just stops, as for any superseded attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from storage.database import retrying_until
from storage.errors import DatabaseUnavailableError, StaleAttemptError
from storage.records import JobKind, JobRecord

if TYPE_CHECKING:
    import numpy as np

    from worker.jobs import JobContext
    from worker.lease import LeaseHeartbeat

logger = logging.getLogger(__name__)

#: How long a job whose lease ran out keeps asking the database to take its run back. Past it the
#: job ends; its run's lease has expired, so the reconciler requeues it once the database is back
#: (that spends the attempt: the job was no longer there to say what happened).
HAND_BACK_PATIENCE_S = 600.0


def hand_back_after_outage(
    context: JobContext,
    kind: JobKind,
    job_id: int,
    attempt: int,
    heartbeat: LeaseHeartbeat,
    *,
    held_back: Callable[[], object] | None = None,
    checkpoint: Mapping[str, np.ndarray] | None = None,
    checkpoint_step: int = 0,
) -> JobRecord | None:
    """Hand job ``job_id`` back without spending ``attempt``, as soon as the database answers.

    Call it after the heartbeat stopped: the hand-back must be the attempt's last write.

    Args:
        context: who runs the job.
        kind: the job's table.
        job_id: the job.
        attempt: the attempt that held it (the fencing token of both writes).
        heartbeat: the attempt's (stopped) heartbeat: when the outage began, the lease's TTL.
        held_back: the write the outage stopped (a chunk's metrics), made first so that the
            checkpoint's step is recorded.
        checkpoint: the state training stopped at, stored with the hand-back.
        checkpoint_step: its step.

    Returns:
        The job handed back (QUEUED; CANCELLED if a cancel came meanwhile), or None when a newer
        attempt took it over.

    Raises:
        DatabaseUnavailableError: the database stayed away (or unwritable, e.g. a full disk)
            for ``HAND_BACK_PATIENCE_S``, or refused a write that is not retried.
    """
    down_since = heartbeat.outage_started_at() or time.monotonic()
    give_up_at = time.monotonic() + HAND_BACK_PATIENCE_S
    outage = (
        f"{heartbeat.job_name}: the database was unreachable for longer than the "
        f"{heartbeat.lease_ttl_s:g} s lease"
    )
    try:
        with retrying_until(lambda: give_up_at):
            if held_back is not None:
                held_back()
            handed_back = context.repository.hand_back_run(
                job_id,
                attempt,
                owner=context.owner,
                checkpoint=checkpoint if checkpoint_step > 0 else None,
                checkpoint_step=checkpoint_step,
                kind=kind,
            )
    except StaleAttemptError:
        logger.warning("%s; attempt %s was taken over meanwhile, stopping", outage, attempt)
        return None
    except DatabaseUnavailableError:
        logger.warning(
            "%s and is still unreachable after %.0f s; stopping (the reconciler requeues the "
            "job when the database is back)",
            outage,
            time.monotonic() - down_since,
        )
        # Raised, not swallowed: the job could record nothing, and its caller must say so (the
        # embedded CLI exits 69 with the run left resumable; a worker's task logs one line).
        raise
    at_step = f" at step {checkpoint_step:,}" if kind is JobKind.TRAIN else ""
    logger.warning(
        "%s (%.1f s): handed back%s without spending attempt %s (%s)",
        outage,
        time.monotonic() - down_since,
        at_step,
        attempt,
        handed_back.status.value,
    )
    return handed_back
