"""Where a job runs is the swap of one object: a :class:`JobDispatcher`.

Two implementations, chosen once from the settings by
``worker.cluster.publisher.dispatcher_for``:

- ``worker.cluster.publisher.Dispatcher`` (cluster) publishes job ids to the Redis broker; a
  message carries a job id, never data. One per process (``publisher_for``).
- :class:`worker.inprocess.InProcessDispatcher` (embedded) runs the job in a thread of this
  process through the very function a worker calls (``worker.jobs.execute_job``).

Callers (the CLI's train, eval and resume, the Python API) never ask which one they hold. This
module holds only the protocols, so the job code can name them without importing the Celery shell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from storage.records import JobKind, JobRecord

if TYPE_CHECKING:
    # Types only: importing the repository means SQLAlchemy (~0.3 s), and `trainq train` picks
    # its dispatcher before it opens the database, to start TensorFlow's import first.
    from storage import Repository


class JobHandle(Protocol):
    """A dispatched job, as far as the caller can follow it beyond the database."""

    @property
    def run_id(self) -> int:
        """The job's id (a row of ``runs``, or of ``evaluation_jobs``: see ``kind``)."""
        ...

    @property
    def kind(self) -> JobKind:
        """Which table ``run_id`` is an id of."""
        ...

    @property
    def in_this_process(self) -> bool:
        """True when the job executes in the caller's process (it ends when the process ends)."""
        ...

    def finished(self) -> bool:
        """True once the job is known to have stopped executing (only an in-process job knows)."""
        ...

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait until an in-process job stops executing; True if it has (always for the queue)."""
        ...

    def raise_failure(self) -> None:
        """Re-raise what crashed an in-process job outside of trainq's error handling, if any."""
        ...


class JobDispatcher(Protocol):
    """Starts stored QUEUED jobs: on the broker for workers, or in this process."""

    @property
    def in_this_process(self) -> bool:
        """True when dispatched jobs execute in this process (embedded mode)."""
        ...

    def check(self) -> None:
        """Fail fast, before anything is stored, when jobs cannot be dispatched now."""
        ...

    def dispatch(self, repository: Repository, run: JobRecord) -> JobHandle:
        """Start the stored QUEUED job ``run``."""
        ...

    def dispatch_many(self, repository: Repository, runs: Sequence[JobRecord]) -> list[JobHandle]:
        """Start several stored jobs (one broker connection for all of them)."""
        ...

    def close(self) -> None:
        """Release connections; an in-process dispatcher first lets its jobs finish."""
        ...


class JobPublisher(Protocol):
    """Hands a stored QUEUED job to the workers (the broker's publisher; sweeps start trials so)."""

    def publish(self, repository: Repository, run: JobRecord) -> None:
        """Publish ``run``'s id on its queue and record when."""
        ...
