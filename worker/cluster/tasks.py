"""Celery tasks: thin wrappers that take a job id and hand it to ``worker.jobs``.

Messages come from anywhere, so the id is checked here and the job's config is validated again by
the job itself. A bad message is logged and acknowledged; it never takes the worker down.

When the worker is shutting down (``worker.cluster.shutdown``), a job stops at its next chunk and
hands its run back; the task then publishes the run again so that another worker claims it at once,
and its own message is acknowledged. A job whose process dies is released by the main process
(``worker.cluster.job_request``).
"""

from __future__ import annotations

import logging

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from storage.errors import NotFoundError, StorageError, TrainqError
from storage.records import JobKind, JobRecord, RunStatus
from storage.redaction import excerpt
from worker.cluster import lifecycle  # noqa: F401  (registers the reconciler and the health probe)
from worker.cluster.celery_app import TASK_SOFT_TIME_LIMIT_S, app
from worker.cluster.job_request import JobRequest
from worker.cluster.publisher import publisher_for, trial_ended
from worker.cluster.services import services
from worker.cluster.shutdown import WORKER_STOPPING
from worker.evaluation_job import execute_evaluation_job, fail_timed_out_evaluation
from worker.jobs import JobContext, fail_timed_out
from worker.pack_job import execute_training
from worker.queues import EVAL_TASK, TRAIN_TASK

logger = logging.getLogger(__name__)


@app.task(name=TRAIN_TASK, bind=True, Request=JobRequest)
def train_run(self: Task, run_id: object) -> None:  # type: ignore[type-arg]
    """Train run ``run_id`` (resuming from its newest checkpoint if it has one)."""
    _execute(self, run_id, JobKind.TRAIN)


@app.task(name=EVAL_TASK, bind=True, Request=JobRequest)
def eval_run(self: Task, job_id: object) -> None:  # type: ignore[type-arg]
    """Run evaluation job ``job_id`` (a row of ``evaluation_jobs``: run, checkpoint, split).

    A message published before migration 0003 names the same id (the jobs kept their ids); one
    whose id is no evaluation job is logged and acknowledged.
    """
    _execute(self, job_id, JobKind.EVAL)


def _execute(task: Task, run_id: object, kind: JobKind) -> None:  # type: ignore[type-arg]
    if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 1:
        # Quoted in part: the queue guard lets items up to 1 MiB through, and a whole one would
        # cost a megabyte in the log and its redaction before the next job.
        logger.error(
            "rejected message %s: %s id %s is not a positive integer",
            task.request.id,
            kind.value,
            excerpt(run_id) if isinstance(run_id, str) else excerpt(repr(run_id)),
        )
        return
    found = services()
    context = JobContext.for_this_process(
        found.repository,
        found.settings,
        str(task.request.id),
        hand_back_requested=WORKER_STOPPING.is_set,
    )
    outcome: JobRecord | None = None
    try:
        if WORKER_STOPPING.is_set():  # delivered while stopping: leave it to another worker
            _publish_again(context, found.repository.get_job(run_id, kind))
            return
        ended = _run_job(context, run_id, kind)
        outcome = ended[0]
        for record in ended:
            if record is not None:
                logger.info("%s", outcome_line(record))
            if record is not None and record.status is RunStatus.QUEUED:
                _publish_again(context, record)
    except NotFoundError as exc:
        logger.error("rejected message %s: %s", task.request.id, exc)
    except StorageError as exc:  # the job recorded nothing more; its lease expires, the run resumes
        logger.warning("%s %s: stopped, the database failed under it: %s", kind.value, run_id, exc)
    except SoftTimeLimitExceeded:
        if kind is JobKind.EVAL:
            fail_timed_out_evaluation(context, run_id, TASK_SOFT_TIME_LIMIT_S)
        else:
            fail_timed_out(context, run_id, TASK_SOFT_TIME_LIMIT_S)
    finally:
        if kind is JobKind.TRAIN:
            _start_next_trial(context, run_id, outcome)


def _run_job(context: JobContext, run_id: int, kind: JobKind) -> list[JobRecord | None]:
    """The job's record as it ended (None: not claimable), then those of the pack-mates a
    training job took along (``worker.pack_job``)."""
    if kind is JobKind.EVAL:
        return [execute_evaluation_job(context, run_id)]
    packed = execute_training(context, run_id)
    return [packed.run, *packed.mates]


def _start_next_trial(context: JobContext, run_id: int, outcome: JobRecord | None) -> None:
    """After a training job, whatever its end: a sweep trial's slot may be free, so publish the
    trial that took it (the job itself knows nothing of publishing)."""
    try:
        run = outcome if outcome is not None else context.repository.get_run(run_id)
    except TrainqError:  # gone, or the database is down: the reconciler starts the next trial
        return
    if run.kind is JobKind.TRAIN and run.sweep_id is not None:
        trial_ended(context.repository, context.settings, run.sweep_id)


def outcome_line(run: JobRecord) -> str:
    """One log line that says how a job ended: id, kind, status, steps, attempt, time, error.

    Celery's own line says only ``succeeded in 4.6s: None``: the task returned, not what became
    of the run.
    """
    took = ""
    if run.started_at is not None and run.finished_at is not None:
        took = f" in {(run.finished_at - run.started_at).total_seconds():.1f} s"
    steps = f"{run.steps_done:,} steps, " if run.kind is JobKind.TRAIN else ""
    line = f"{run.label} ({run.kind.value}) {run.status.value}: {steps}attempt {run.attempt}{took}"
    if run.status is RunStatus.QUEUED:
        line += " (handed back to the queue)"
    if run.error:
        line += f"; error: {run.error}"
    return line


def _publish_again(context: JobContext, run: JobRecord) -> None:
    """Publish a handed-back run so that a worker that is not stopping claims it now."""
    if run.status is not RunStatus.QUEUED:
        return
    try:
        publisher_for(context.settings).publish(context.repository, run)
    except TrainqError as exc:  # the run stays QUEUED: a reconciler publishes it later
        logger.warning("%s: handed back but not published: %s", run.label, exc)
