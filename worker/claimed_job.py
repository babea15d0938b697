"""What every job does around its work: claim it, keep its lease, stop when superseded.

Training runs (``worker.jobs``) and evaluation jobs (``worker.evaluation_job``) share one
lifecycle: a claim is one conditional UPDATE, a :class:`~worker.lease.LeaseHeartbeat` keeps the
lease while the work runs, a :class:`~storage.errors.StaleAttemptError` means a newer attempt
took the job over (its writes win, ours stop), and an error that would recur on every attempt
ends the job FAILED without a retry. This module holds that lifecycle once; each job kind gives
only its claim, its work and how it records a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from storage.errors import DatabaseUnavailableError, StaleAttemptError, WeightsCorruptError
from storage.records import JobKind, JobRecord
from worker.errors import DeterministicJobError, InvalidConfigError
from worker.lease import JOB_LOG_NAME, LeaseHeartbeat, LeaseLostInOutageError
from worker.outage import hand_back_after_outage

if TYPE_CHECKING:
    from worker.jobs import JobContext  # worker.jobs imports this module

logger = logging.getLogger(__name__)

#: Set on the log records that say how a job ended (failed, superseded): a worker's log needs
#: them; a command that ran the job in its own process reports the end itself and leaves them out.
JOB_OUTCOME = "trainq_job_outcome"

#: How log lines name a job of each kind ("run 3: claimed as attempt 1 by …"); the integration
#: tests and the chaos harness read these lines.
_LOG_NAME = JOB_LOG_NAME

#: Errors that would fail the same way on every attempt: the job ends FAILED, never retried.
DETERMINISTIC_ERRORS = (DeterministicJobError, InvalidConfigError, WeightsCorruptError)


class Claimed(Protocol):
    """A claimed job's record: its id and the attempt that fences its writes."""

    @property
    def id(self) -> int: ...

    @property
    def attempt(self) -> int: ...


ClaimedT = TypeVar("ClaimedT", bound=Claimed)
ClaimedT_co = TypeVar("ClaimedT_co", bound=Claimed, covariant=True)
OutcomeT = TypeVar("OutcomeT")
ResultT = TypeVar("ResultT")


class Claim(Protocol[ClaimedT_co]):
    """A repository's claim of one job kind (``claim_run``, ``claim_evaluation_job``)."""

    def __call__(
        self, job_id: int, /, *, owner: str, worker_host: str, lease_ttl_s: float
    ) -> ClaimedT_co | None: ...


def run_claimed(
    context: JobContext,
    job_id: int,
    kind: JobKind,
    *,
    claim: Claim[ClaimedT],
    work: Callable[[ClaimedT, LeaseHeartbeat], OutcomeT],
    settle: Callable[[ClaimedT, OutcomeT], ResultT],
    fail: Callable[[ClaimedT, str], ResultT],
) -> ResultT | JobRecord | None:
    """Claim job ``job_id`` and run ``work`` on it under a lease heartbeat.

    Args:
        context: who runs the job (lease owner, host, settings, repository).
        job_id: the job's id in the table of its ``kind``.
        kind: which table the job lives in; also names it in log lines.
        claim: the repository's claim for this kind.
        work: the job itself, called while the heartbeat keeps the lease.
        settle: called with ``work``'s outcome once the heartbeat has stopped, so that a write
            that gives the attempt back (a hand-back) is the attempt's last.
        fail: records the job FAILED with a readable error (a deterministic failure).

    Returns:
        What ``settle`` or ``fail`` returned; the job handed back (QUEUED, its attempt not
        spent) after a database outage longer than the lease (``worker.outage``); or None when
        the job could not be claimed (another attempt owns it, it already finished, or it was
        cancelled: a duplicate delivery is a no-op) or when a newer attempt took it over while
        it ran.
    """
    name = _LOG_NAME[kind]
    claimed = claim(
        job_id,
        owner=context.owner,
        worker_host=context.host,
        lease_ttl_s=context.settings.lease_ttl_s,
    )
    if claimed is None:
        logger.info(
            "%s %s: not claimable (finished, cancelled or owned elsewhere); no-op", name, job_id
        )
        return None
    logger.info("%s %s: claimed as attempt %s by %s", name, job_id, claimed.attempt, context.owner)
    heartbeat = LeaseHeartbeat(
        context.repository, claimed.id, claimed.attempt, context.settings.lease_ttl_s, kind=kind
    )
    try:
        with heartbeat:
            outcome = work(claimed, heartbeat)
        return settle(claimed, outcome)
    except StaleAttemptError:
        # A newer attempt took the job over (our lease expired): its writes win, ours stop here.
        logger.warning(
            "%s %s: attempt %s was superseded; stopping",
            name,
            job_id,
            claimed.attempt,
            extra={JOB_OUTCOME: True},
        )
        return None
    except DETERMINISTIC_ERRORS as exc:
        logger.error("%s %s failed: %s", name, job_id, exc, extra={JOB_OUTCOME: True})
        return fail(claimed, str(exc))
    except (LeaseLostInOutageError, DatabaseUnavailableError):
        # The database went away for longer than the lease, or where the job could not wait for
        # it: not the job's fault, so its attempt is given back (nothing in memory is kept here;
        # a training job that can keep its state hands back through ``settle`` instead).
        return hand_back_after_outage(context, kind, claimed.id, claimed.attempt, heartbeat)
