"""The exporter's snapshot: counts, waits, outcomes and paces read by the database, on both
backends, agreeing with the runs the test put there."""

from __future__ import annotations

import pytest

from storage import AttemptOutcome, JobKind, Repository, RunStatus
from storage.errors import InvalidValueError
from storage.metrics_reads import AttemptOutcomeCount, JobCount, MetricsSnapshot
from tests.storage.support import LEASE_TTL_S, FakeClock, chunk, claim, new_eval_job, new_run


def _counts(snapshot: MetricsSnapshot) -> dict[tuple[JobKind, str, RunStatus], int]:
    return {(c.kind, c.queue, c.status): c.count for c in snapshot.job_counts}


def test_an_empty_store_reads_as_no_jobs_no_waits_and_nothing_running(repo: Repository) -> None:
    snapshot = repo.read_metrics_snapshot()

    assert (snapshot.job_counts, snapshot.waits, snapshot.running) == ((), (), ())
    assert (snapshot.oldest_queued_age_s, snapshot.attempt_outcomes) == ({}, ())


def test_jobs_are_counted_by_kind_queue_and_status(repo: Repository) -> None:
    first = new_run(repo, queue="train")
    new_run(repo, queue="train")
    new_run(repo, queue="gpu")
    claim(repo, first.id)
    new_eval_job(repo, first.id, queue="eval")

    assert _counts(repo.read_metrics_snapshot()) == {
        (JobKind.TRAIN, "train", RunStatus.RUNNING): 1,
        (JobKind.TRAIN, "train", RunStatus.QUEUED): 1,
        (JobKind.TRAIN, "gpu", RunStatus.QUEUED): 1,
        (JobKind.EVAL, "eval", RunStatus.QUEUED): 1,
    }


def test_the_wait_histogram_counts_each_started_job_under_every_bound_it_fits(
    repo: Repository, clock: FakeClock
) -> None:
    quick, slow, waiting = (new_run(repo, queue="train") for _ in range(3))
    clock.advance(2)
    claim(repo, quick.id)
    clock.advance(98)
    claim(repo, slow.id)

    snapshot = repo.read_metrics_snapshot(wait_bounds_s=(1, 10, 100, 1000))

    [histogram] = snapshot.waits
    assert (histogram.kind, histogram.queue, histogram.count) == (JobKind.TRAIN, "train", 2)
    assert histogram.cumulative == (0, 1, 2, 2)
    assert histogram.sum_s == pytest.approx(102, abs=1e-3)
    assert waiting.id not in {run.run_id for run in snapshot.running}


def test_a_restarted_run_keeps_the_wait_of_its_first_start(
    repo: Repository, clock: FakeClock
) -> None:
    run = new_run(repo, queue="train")
    clock.advance(3)
    claimed = claim(repo, run.id)
    clock.advance(500)
    repo.hand_back_run(run.id, claimed.attempt, owner="worker-1")
    claim(repo, run.id)

    [histogram] = repo.read_metrics_snapshot(wait_bounds_s=(5, 1000)).waits

    assert (histogram.cumulative, histogram.count) == ((1, 1), 1)
    assert histogram.sum_s == pytest.approx(3, abs=1e-3)


def test_the_oldest_queued_age_counts_a_requeued_run_from_its_requeue(
    repo: Repository, clock: FakeClock
) -> None:
    handed_back = new_run(repo, queue="train")
    claimed = claim(repo, handed_back.id)
    clock.advance(3600)
    repo.hand_back_run(handed_back.id, claimed.attempt, owner="worker-1")
    clock.advance(10)
    new_run(repo, queue="train")  # queued just now
    new_run(repo, queue="gpu")
    clock.advance(5)
    new_eval_job(repo, handed_back.id, queue="gpu")

    ages = repo.read_metrics_snapshot().oldest_queued_age_s

    assert ages == {"train": pytest.approx(15), "gpu": pytest.approx(5)}


def test_ended_attempts_are_counted_by_queue_and_outcome(
    repo: Repository, clock: FakeClock
) -> None:
    lost = claim(repo, new_run(repo, queue="train").id)
    clock.advance(LEASE_TTL_S + 1)
    repo.requeue_expired(lost.id)
    retried = claim(repo, lost.id)
    repo.finish_run(lost.id, retried.attempt, RunStatus.FAILED, error="diverged")
    handed = claim(repo, new_run(repo, queue="gpu").id)
    repo.hand_back_run(handed.id, handed.attempt, owner="worker-1")

    outcomes = set(repo.read_metrics_snapshot().attempt_outcomes)

    assert outcomes == {
        AttemptOutcomeCount("train", AttemptOutcome.LOST, 1),
        AttemptOutcomeCount("train", AttemptOutcome.FAILED, 1),
        AttemptOutcomeCount("gpu", AttemptOutcome.HANDED_BACK, 1),
    }


def test_a_running_run_s_pace_is_its_attempt_s_steps_over_the_time_since_its_claim(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo, queue="train").id)
    repo.record_chunk(run.id, run.attempt, chunk(1, 400), lease_ttl_s=LEASE_TTL_S)
    clock.advance(8)
    idle = claim(repo, new_run(repo, queue="train").id)

    running = {entry.run_id: entry for entry in repo.read_metrics_snapshot().running}

    assert (running[run.id].steps_done, running[run.id].worker_host) == (400, "host-a")
    assert running[run.id].steps_per_s == pytest.approx(50)
    assert running[idle.id].steps_per_s is None


def test_job_counts_are_plain_records(repo: Repository) -> None:
    new_run(repo, queue="train")

    assert repo.read_metrics_snapshot().job_counts == (
        JobCount(JobKind.TRAIN, "train", RunStatus.QUEUED, 1),
    )


@pytest.mark.parametrize("bounds", [(), (5, 5), (0, 1), (10, 1)])
def test_wait_bounds_must_increase_from_above_zero(repo: Repository, bounds: tuple[int]) -> None:
    with pytest.raises(InvalidValueError, match="wait_bounds_s"):
        repo.read_metrics_snapshot(wait_bounds_s=bounds)
