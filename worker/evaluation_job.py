"""The body of an evaluation job: claim it, evaluate its checkpoint over a split, store the result.

Queued jobs on the same images ride along (``worker.evaluation_riders``): one pass over the split
evaluates all of their weights (``worker.packed_evaluation``), and each result is stored as its
own job's, exactly as when it runs alone.

Evaluation jobs live in their own table (``evaluation_jobs``) but share the training runs' job
guarantees: a claim is one conditional UPDATE, a heartbeat keeps the lease, every write is
fenced by the attempt, and a lost worker's job is requeued by the reconciler until
``max_attempts``. The Celery task ``trainq.eval_run`` and the embedded mode both call
:func:`execute_evaluation_job`. TensorFlow is imported inside the function, in the job process.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from storage import Repository
from storage.records import EvaluationJobRecord, JobKind, RunStatus
from worker.claimed_job import run_claimed
from worker.config import Device, Split, parse_train_config
from worker.evaluation_riders import MAX_RIDERS, Riders, checkpoint_to_evaluate, images_key
from worker.jobs import JobContext, effective_device
from worker.lease import LeaseHeartbeat
from worker.training_data import load_training_data
from worker.validation import split_arrays

if TYPE_CHECKING:
    from worker.evaluation import EvaluationResult  # imports TensorFlow: only in the job

logger = logging.getLogger(__name__)


def execute_evaluation_job(
    context: JobContext, job_id: int, *, mates: Sequence[int] | None = None
) -> EvaluationJobRecord | None:
    """Claim and run evaluation job ``job_id``, with the queued jobs that can share its pass.

    Args:
        context: who runs the job.
        job_id: the job (a row of ``evaluation_jobs``).
        mates: the jobs that may ride along (``worker.evaluation_riders``): None, any QUEUED
            job on the same queue and images (a worker); a list, only those (the embedded mode
            passes the jobs dispatched together); empty, none.

    Returns:
        The finished job, or None when it could not be claimed (another attempt owns it, it
        already finished, or it was cancelled): a duplicate delivery is a no-op.

    Raises:
        EvaluationJobNotFoundError: no evaluation job has this id (e.g. an old message that
            names a training run); the caller logs and acknowledges it.
    """
    repository = context.repository
    outcome = run_claimed(
        context,
        job_id,
        JobKind.EVAL,
        claim=repository.claim_evaluation_job,
        work=lambda job, heartbeat: _evaluate(context, job, heartbeat, mates),
        settle=lambda _job, finished: finished,
        fail=lambda job, error: repository.finish_evaluation_job(
            job.id, job.attempt, RunStatus.FAILED, error=error
        ),
    )
    assert outcome is None or isinstance(outcome, EvaluationJobRecord)
    return outcome


def _evaluate(
    context: JobContext,
    job: EvaluationJobRecord,
    heartbeat: LeaseHeartbeat,
    mates: Sequence[int] | None,
) -> EvaluationJobRecord:
    from worker.packed_evaluation import evaluate_many, pack_plan

    repository = context.repository
    checkpoint = checkpoint_to_evaluate(repository, job)
    trained = parse_train_config(repository.get_run(job.run_id).config)
    data = load_training_data(trained, context.settings, repository)  # the run's own version
    split = Split(job.split)
    features, labels = split_arrays(data, split, trained)
    # As many riders as one pack's weights hold beside this job's (worker.packed_evaluation).
    room = pack_plan(data.dims, MAX_RIDERS + 1).sets_per_pack - 1
    with Riders(context, job, images_key(trained, split), limit=room, mates=mates) as riders:
        outcomes = evaluate_many(
            [checkpoint.arrays, *(rider.weights for rider in riders.ready)],
            features,
            labels,
            dims=data.dims,
            feature_kind=data.feature_kind,
            dataset=data.label,
            device=effective_device(Device.AUTO, context.settings),
        )
        for rider, outcome in zip(riders.ready, outcomes[1:], strict=True):
            if isinstance(outcome, Exception):
                riders.settle(rider, outcome)  # its weights do not fit: it fails alone
            else:
                riders.settle(rider, outcome, functools.partial(_save, repository, outcome))
    result = outcomes[0]
    if isinstance(result, Exception):
        raise result  # this job's weights do not fit: it fails (its riders were stored)
    # Waits out a database outage for as long as the lease lasts; past it the job is handed
    # back unspent (``worker.claimed_job``) and evaluated again by the next claim.
    return heartbeat.write(lambda: _save(repository, result, job, checkpoint.info.step))


def _save(
    repository: Repository, result: EvaluationResult, job: EvaluationJobRecord, checkpoint_step: int
) -> EvaluationJobRecord:
    """Store ``job``'s result as its ``evaluations`` row and finish it, both fenced."""
    repository.save_evaluation(
        run_id=job.run_id,
        checkpoint_step=checkpoint_step,
        split=job.split,
        loss=result.loss,
        accuracy=result.accuracy,
        per_class_accuracy=list(result.per_class_accuracy),
        confusion=[list(row) for row in result.confusion],
        job_id=job.id,
        job_attempt=job.attempt,
    )
    return repository.finish_evaluation_job(
        job.id, job.attempt, RunStatus.SUCCEEDED, device=result.device
    )


def fail_timed_out_evaluation(context: JobContext, job_id: int, limit_s: float) -> None:
    """Mark an evaluation job FAILED for exceeding the task time limit (if this process owns it)."""
    job = context.repository.get_evaluation_job(job_id)
    if job.status is RunStatus.RUNNING and job.lease_owner == context.owner:
        context.repository.finish_evaluation_job(
            job.id, job.attempt, RunStatus.FAILED, error=f"exceeded the {limit_s:.0f} s limit"
        )
