"""The queue page: workers online, queue depths and what is running, as ``trainq status`` sees them.

The broker is asked through the same boundary as ``trainq status`` (``worker.cluster.publisher`` and
``worker.cluster.census``, imported only in cluster mode): an embedded installation has no broker,
and the page says so instead of failing. :func:`broker_state` blocks for about a second; the app
asks it through ``broker_snapshot`` (one question at a time, shared, reused for 2 s).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from api_cli.dashboard.views import age_text, run_json
from storage.errors import TrainqError
from storage.records import JobKind, RunStatus
from storage.redaction import redact

if TYPE_CHECKING:
    from storage import Repository, Settings
    from storage.records import EvaluationJobRecord

#: At most this many running and queued jobs of each kind are listed (the counts cover them all).
LISTED_RUNS = 200


def queue_page(repository: Repository, broker: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The broker's state (from :func:`broker_state`), jobs by status, running and queued jobs.

    Evaluation jobs take worker slots and queue places like training runs, so they are counted
    and listed beside them (``kind`` says which; an evaluation job links to its run).
    """
    running = repository.page_training_runs(statuses=[RunStatus.RUNNING], limit=LISTED_RUNS)
    queued = repository.page_training_runs(statuses=[RunStatus.QUEUED], limit=LISTED_RUNS)
    trainings = repository.count_runs_by_status(kind=JobKind.TRAIN)
    evaluations = repository.count_runs_by_status(kind=JobKind.EVAL)
    running_evals = repository.list_evaluation_jobs(statuses=[RunStatus.RUNNING], limit=LISTED_RUNS)
    queued_evals = repository.list_evaluation_jobs(statuses=[RunStatus.QUEUED], limit=LISTED_RUNS)
    return {
        "broker": broker,
        "runs_by_status": {status.value: count for status, count in trainings.items()},
        "evaluations_by_status": {status.value: count for status, count in evaluations.items()},
        "running": [
            run_json(run, now)
            | {"kind": "train", "worker_host": run.worker_host or "", "attempt": run.attempt}
            for run in running.runs
        ]
        + [_evaluation_json(job, now) for job in running_evals],
        "queued": [
            run_json(run, now) | {"kind": "train", "queue": run.queue} for run in queued.runs
        ]
        + [_evaluation_json(job, now) for job in queued_evals],
        "running_total": running.total + evaluations[RunStatus.RUNNING],
        "queued_total": queued.total + evaluations[RunStatus.QUEUED],
    }


def _evaluation_json(job: EvaluationJobRecord, now: datetime) -> dict[str, Any]:
    """An evaluation job as the queue page lists it, beside training runs."""
    step = "newest checkpoint" if job.checkpoint_step is None else f"step {job.checkpoint_step:,}"
    return {
        "kind": "eval",
        "id": job.id,
        "run_id": job.run_id,
        "name": f"evaluates run {job.run_id} ({step}) on the {job.split} split",
        "status": job.status.value,
        "queue": job.queue,
        "worker_host": job.worker_host or "",
        "attempt": job.attempt,
        "device": job.device or "",
        "age": age_text(now, job.created_at),
    }


def broker_state(settings: Settings) -> dict[str, Any]:
    """Workers online, queue depths and their consumers, or why the broker cannot say (blocks
    for about a second; never raises: a broken broker is something the page shows)."""
    if settings.embedded:
        return {
            "configured": False,
            "ok": False,
            "message": "no broker configured (embedded): jobs run inside the `trainq` "
            "command that started them; set TRAINQ_BROKER_URL to see a cluster's workers",
        }
    from worker.cluster.census import QueueCensus
    from worker.cluster.publisher import publisher_for

    try:
        dispatcher = publisher_for(settings)
        dispatcher.ping()
        census = QueueCensus(settings)  # asked while the workers are pinged, as `trainq status`
        depths = dispatcher.queue_depths()
        workers = sorted(dispatcher.workers_online())
        consumers = census.wait() or {}
    except TrainqError as exc:
        return {"configured": True, "ok": False, "message": redact(str(exc))}
    except Exception as exc:
        # Celery's and kombu's own errors (a broker lost mid-broadcast), not importable here.
        return {"configured": True, "ok": False, "message": redact(f"the broker failed: {exc}")}
    return {
        "configured": True,
        "ok": True,
        "workers": workers,
        "queues": [
            {"queue": queue, "waiting": waiting, "consumers": sorted(consumers.get(queue, ()))}
            for queue, waiting in sorted(depths.items())
        ],
    }
