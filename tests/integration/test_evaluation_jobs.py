"""Evaluation jobs on a real cluster keep the job guarantees of training runs in their own table."""

from __future__ import annotations

import json
import time

import pytest

from storage.records import EvaluationJobRecord, RunStatus
from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def _wait_for_job(cluster: Cluster, job_id: int, *, timeout_s: float) -> EvaluationJobRecord:
    repository = cluster.repository()
    deadline = time.monotonic() + timeout_s
    while True:
        job = repository.get_evaluation_job(job_id)
        if job.status.terminal or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_an_eval_job_whose_worker_died_is_published_again_and_claimed_by_another(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker(worker_command())
    trained = cluster.trainq(
        "train", "--steps", "200", "--chunk-steps", "100", "--checkpoint-every", "100", "--json"
    )
    run_id = int(json.loads(trained.stdout)["run_id"])
    repository = cluster.repository()
    assert wait_for(run_id, repository, timeout_s=120).status is RunStatus.SUCCEEDED
    job = repository.create_evaluation_job(
        run_id=run_id, checkpoint_step=200, split="test", queue="eval", max_attempts=3
    )
    # A worker claims it and dies at once: no message left, a lease that nobody renews.
    dead = repository.claim_evaluation_job(
        job.id, owner="gone:1:x", worker_host="gone", lease_ttl_s=1
    )
    assert dead is not None and dead.attempt == 1

    finished = _wait_for_job(cluster, job.id, timeout_s=120)

    assert finished.status is RunStatus.SUCCEEDED, worker.log()
    assert finished.attempt == 2 and finished.worker_host != "gone"
    result = repository.get_evaluation_for_job(job.id)
    assert result is not None and result.run_id == run_id and result.checkpoint_step == 200
    assert f"eval {job.id}: published again" in worker.log()
    assert repository.list_runs()[0].id == run_id  # no evaluation job among the runs


def test_an_eval_message_naming_no_evaluation_job_is_logged_and_dropped(cluster: Cluster) -> None:
    from worker.cluster.celery_app import create_app

    worker = cluster.start_worker(worker_command())
    # As an older trainq published it: the id of a row of runs, which is no evaluation job.
    create_app(cluster.settings()).send_task("trainq.eval_run", args=[424242], queue="eval")
    deadline = time.monotonic() + 60
    while "no evaluation job with id 424242" not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)
    assert worker.alive()


def test_a_worker_evaluates_every_checkpoint_of_a_run_in_one_pass_and_stores_each(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker(worker_command())
    trained = cluster.trainq(
        "train", "--steps", "400", "--chunk-steps", "50", "--checkpoint-every", "50", "--json"
    )
    run_id = int(json.loads(trained.stdout)["run_id"])
    repository = cluster.repository()
    assert wait_for(run_id, repository, timeout_s=120).status is RunStatus.SUCCEEDED

    evaluated = cluster.trainq(
        "eval", str(run_id), "--checkpoint", "all", "--wait", "--format", "json"
    )

    assert evaluated.returncode == 0, evaluated.stderr + worker.log()
    shown = json.loads(evaluated.stdout)
    steps = [e["checkpoint_step"] for e in shown["evaluations"]]
    assert steps == list(range(50, 401, 50)) and shown["failed"] == []
    jobs = [repository.get_evaluation_job(job_id) for job_id in shown["evaluation_job_ids"]]
    assert all(job.status is RunStatus.SUCCEEDED and job.attempt == 1 for job in jobs)
    # The first job a job process claimed took the queued others along ("ride"); their own
    # messages then found them finished (or claimed) and were no-ops.
    assert "other job(s) in one pass" in worker.log(), worker.log()
    assert "to ride with eval" in worker.log()
