"""The body of an evaluation job: claim it, evaluate one checkpoint over a split, store the result.

Evaluation jobs live in their own table (``evaluation_jobs``) but share the training runs' job
guarantees: a claim is one conditional UPDATE, a heartbeat keeps the lease, every write is
fenced by the attempt, and a lost worker's job is requeued by the reconciler until
``max_attempts``. The Celery task ``trainq.eval_run`` and the embedded mode both call
:func:`execute_evaluation_job`. TensorFlow is imported inside the function, in the job process.
"""

from __future__ import annotations

import logging

from storage import Repository
from storage.errors import CheckpointNotFoundError
from storage.records import Checkpoint, EvaluationJobRecord, JobKind, RunStatus
from worker.claimed_job import run_claimed
from worker.config import Device, Split, parse_train_config
from worker.errors import DeterministicJobError
from worker.jobs import JobContext, effective_device
from worker.lease import LeaseHeartbeat
from worker.training_data import load_training_data
from worker.validation import split_arrays

logger = logging.getLogger(__name__)


def execute_evaluation_job(context: JobContext, job_id: int) -> EvaluationJobRecord | None:
    """Claim and run evaluation job ``job_id``.

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
        work=lambda job, heartbeat: _evaluate(context, job, heartbeat),
        settle=lambda _job, finished: finished,
        fail=lambda job, error: repository.finish_evaluation_job(
            job.id, job.attempt, RunStatus.FAILED, error=error
        ),
    )
    assert outcome is None or isinstance(outcome, EvaluationJobRecord)
    return outcome


def _evaluate(
    context: JobContext, job: EvaluationJobRecord, heartbeat: LeaseHeartbeat
) -> EvaluationJobRecord:
    from worker.evaluation import evaluate

    repository = context.repository
    checkpoint = _checkpoint_to_evaluate(repository, job)
    trained = parse_train_config(repository.get_run(job.run_id).config)
    data = load_training_data(trained, context.settings, repository)  # the run's own version
    features, labels = split_arrays(data, Split(job.split), trained)
    result = evaluate(
        checkpoint.arrays,
        features,
        labels,
        dims=data.dims,
        feature_kind=data.feature_kind,
        dataset=data.label,
        device=effective_device(Device.AUTO, context.settings),
    )

    def save() -> EvaluationJobRecord:
        repository.save_evaluation(
            run_id=job.run_id,
            checkpoint_step=checkpoint.info.step,
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

    # Waits out a database outage for as long as the lease lasts; past it the job is handed
    # back unspent (``worker.claimed_job``) and evaluated again by the next claim.
    return heartbeat.write(save)


def _checkpoint_to_evaluate(repository: Repository, job: EvaluationJobRecord) -> Checkpoint:
    try:
        if job.checkpoint_step is None:  # queued before migration 0003: the newest one
            checkpoint = repository.latest_checkpoint(job.run_id)
            if checkpoint is None:
                raise CheckpointNotFoundError(f"run {job.run_id} has no checkpoint yet")
            return checkpoint
        return repository.get_checkpoint(job.run_id, job.checkpoint_step)
    except CheckpointNotFoundError as exc:
        raise DeterministicJobError(str(exc)) from exc


def fail_timed_out_evaluation(context: JobContext, job_id: int, limit_s: float) -> None:
    """Mark an evaluation job FAILED for exceeding the task time limit (if this process owns it)."""
    job = context.repository.get_evaluation_job(job_id)
    if job.status is RunStatus.RUNNING and job.lease_owner == context.owner:
        context.repository.finish_evaluation_job(
            job.id, job.attempt, RunStatus.FAILED, error=f"exceeded the {limit_s:.0f} s limit"
        )
