"""The embedded mode's dispatcher: jobs run in a thread of this process, through the worker's code.

With no broker there is no worker process: the caller's process executes each job with
``worker.jobs.execute_job``, exactly as a Celery task would. Jobs run one at a time, in the order
they were dispatched, in one background thread, so the caller's main thread stays free to show
progress by reading the database (as it does for a cluster run) and to be interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storage import Settings
from storage.errors import StaleAttemptError, StorageError
from storage.records import JobKind, JobRecord, RunStatus
from worker.dispatch import JobHandle

if TYPE_CHECKING:
    from storage import Repository  # types only: see worker.dispatch

logger = logging.getLogger(__name__)


@dataclass
class InProcessJob:
    """A job executing (or waiting to execute) in this process."""

    run_id: int
    kind: JobKind = JobKind.TRAIN
    in_this_process: bool = True
    done: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None
    #: Set by the caller (Ctrl-C) to end the job at its next chunk with a checkpoint there and the
    #: run handed back (QUEUED) for `trainq resume`; a job not yet started then never starts.
    hand_back: threading.Event = field(default_factory=threading.Event)
    #: The lease owner this job claims the run as (known from dispatch on).
    owner: str = ""
    #: Evaluation jobs dispatched together with this one, which may share its pass over the
    #: split (``worker.evaluation_riders``); whichever runs first takes the others along.
    mates: tuple[int, ...] = ()

    def finished(self) -> bool:
        """True once ``execute_job`` has returned or raised."""
        return self.done.is_set()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the job to stop executing; True if it has."""
        return self.done.wait(timeout_s)

    def raise_failure(self) -> None:
        """Re-raise the exception that escaped ``execute_job`` (a bug), if one did."""
        if self.failure is not None:
            raise self.failure


class InProcessDispatcher:
    """Runs dispatched jobs here, one after another, in a daemon thread."""

    in_this_process = True

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pending: queue.Queue[tuple[Repository, InProcessJob]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._jobs: list[InProcessJob] = []

    def check(self) -> None:
        """Nothing to reach: the job runs here."""

    def dispatch(
        self, repository: Repository, run: JobRecord, *, mates: Sequence[int] = ()
    ) -> JobHandle:
        """Queue ``run`` for this process's job thread and return its handle at once.

        ``mates``: other evaluation jobs dispatched with it, which may ride in its pass.
        """
        from worker.jobs import JobContext

        owner = JobContext.for_this_process(repository, self._settings, "embedded").owner
        job = InProcessJob(run.id, run.kind, owner=owner, mates=tuple(mates))
        with self._lock:
            self._jobs = [*(j for j in self._jobs if not j.finished()), job]
            self._pending.put((repository, job))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="trainq-embedded-jobs", daemon=True
                )
                self._thread.start()
        return job

    def dispatch_many(self, repository: Repository, runs: Sequence[JobRecord]) -> list[JobHandle]:
        """Queue several jobs; they run in this order. The first of several evaluation jobs
        evaluates the others that share its images in the same pass; theirs are then no-ops."""
        evaluations = tuple(run.id for run in runs if run.kind is JobKind.EVAL)
        return [
            self.dispatch(repository, run, mates=evaluations if run.kind is JobKind.EVAL else ())
            for run in runs
        ]

    def close(self) -> None:
        """Let every dispatched job finish: a daemon thread would die mid-chunk at exit."""
        with self._lock:
            jobs = list(self._jobs)
        for job in jobs:
            job.join()

    def _work(self) -> None:
        while True:
            repository, job = self._pending.get()
            run_job(repository, self._settings, job)


def run_job(repository: Repository, settings: Settings, job: InProcessJob) -> None:
    """Execute ``job`` here; an exception that escapes the job code is kept and recorded."""
    from worker.evaluation_job import execute_evaluation_job
    from worker.jobs import JobContext, execute_job
    from worker.training import trainer_process

    context = JobContext.for_this_process(
        repository, settings, "embedded", hand_back_requested=job.hand_back.is_set
    )
    # Forked for this process's run by `trainq train` or `trainq resume`, for these settings.
    trainer = trainer_process.for_this_run(settings.home_dir)
    if trainer is not None and job.kind is JobKind.TRAIN:
        context = dataclasses.replace(context, trainer=trainer)
    try:
        if job.hand_back.is_set():
            pass
        elif job.kind is JobKind.EVAL:
            execute_evaluation_job(context, job.run_id, mates=job.mates)
        else:
            execute_job(context, job.run_id)
    except BaseException as exc:  # reported by the caller's thread, recorded on the run
        job.failure = exc
        _record_crash(repository, context.owner, job, exc)
    finally:
        job.done.set()


def release_if_ours(
    repository: Repository, owner: str, run_id: int, kind: JobKind = JobKind.TRAIN
) -> JobRecord:
    """Hand the job back if ``owner`` still holds it; its job thread's writes then fail.

    Raises:
        StaleAttemptError: another attempt took the job meanwhile.
        StorageError: the database cannot be written.
    """
    run = repository.get_job(run_id, kind)
    if run.status is not RunStatus.RUNNING or run.lease_owner != owner:
        return run  # finished, or already handed back by the job itself
    return repository.hand_back_run(run_id, run.attempt, owner=owner, kind=kind)


def _record_crash(
    repository: Repository, owner: str, job: InProcessJob, exc: BaseException
) -> None:
    """Nothing else will requeue an embedded run: record why it stopped.

    A storage failure (disk full, database locked or unreachable) says nothing about the run:
    hand it back so that `trainq resume` continues it once the database is usable. If even that
    write fails, the run stays RUNNING under this process's lease, which `trainq resume` takes
    over as soon as this process is gone.
    """
    if isinstance(exc, StorageError):
        with contextlib.suppress(StaleAttemptError, StorageError):
            release_if_ours(repository, owner, job.run_id, job.kind)
        return
    error = f"internal error: {type(exc).__name__}: {exc}"
    try:
        run = repository.get_job(job.run_id, job.kind)
        if run.status is not RunStatus.RUNNING:
            return
        if job.kind is JobKind.EVAL:
            repository.finish_evaluation_job(run.id, run.attempt, RunStatus.FAILED, error=error)
        else:
            repository.finish_run(run.id, run.attempt, RunStatus.FAILED, error=error)
    except Exception:  # the database itself may be what failed; the caller still hears of exc
        logger.exception("%s %s: could not record the crash", job.kind.value, job.run_id)
