"""Runs: creation, lookup, listing, counting, publishing, failing and cancelling."""

from __future__ import annotations

import math
from datetime import UTC, timedelta

import pytest

from storage import (
    InvalidStateError,
    InvalidValueError,
    JobKind,
    Repository,
    RunNotFoundError,
    RunStatus,
)
from storage.errors import EvaluationJobNotFoundError
from storage.validation import MAX_SEED
from tests.storage.support import LEASE_TTL_S, FakeClock, chunk, claim, new_eval_job, new_run


def test_a_new_run_is_queued_at_attempt_zero_with_everything_it_was_given(
    repo: Repository, clock: FakeClock
) -> None:
    run = new_run(repo, name="baseline", tags={"team": "vision"}, seed=MAX_SEED)

    assert run.status is RunStatus.QUEUED
    assert run.kind is JobKind.TRAIN
    assert (run.attempt, run.max_attempts, run.steps_done) == (0, 3, 0)
    assert run.name == "baseline"
    assert run.seed == MAX_SEED
    assert run.tags == {"team": "vision"}
    assert run.config == {"learning_rate": 0.01, "steps": 100}
    assert run.created_at == clock.now
    assert repo.get_run(run.id) == run


def test_timestamps_come_back_timezone_aware_in_utc(repo: Repository, clock: FakeClock) -> None:
    run = claim(repo, new_run(repo).id)
    stored = repo.get_run(run.id)
    for moment in (stored.created_at, stored.started_at, stored.lease_expires_at):
        assert moment is not None
        assert moment.tzinfo is not None
        assert moment.utcoffset() == timedelta(0)
    assert stored.lease_expires_at == clock.now + timedelta(seconds=LEASE_TTL_S)
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.astimezone(UTC) == clock.now


def test_an_unknown_run_id_raises_a_not_found_error_that_suggests_listing_runs(
    repo: Repository,
) -> None:
    with pytest.raises(RunNotFoundError, match="trainq runs list"):
        repo.get_run(999)
    with pytest.raises(RunNotFoundError):
        repo.claim_run(999, owner="w", worker_host="h", lease_ttl_s=LEASE_TTL_S)
    with pytest.raises(RunNotFoundError):
        repo.mark_published(999)


def test_a_config_with_nan_is_refused_before_anything_is_stored(repo: Repository) -> None:
    with pytest.raises(InvalidValueError, match="NaN"):
        new_run(repo, config={"learning_rate": math.nan})
    with pytest.raises(InvalidValueError, match="NaN"):
        new_run(repo, config={"nested": [1.0, math.inf]})
    assert repo.list_runs(kind=None) == []


@pytest.mark.parametrize("bad_tags", [{'a"b': "x"}, {"": "x"}, {"k": "v" * 300}])
def test_malformed_tags_are_refused(repo: Repository, bad_tags: dict[str, str]) -> None:
    with pytest.raises(InvalidValueError, match="tag"):
        new_run(repo, tags=bad_tags)


def test_mark_published_records_when_the_message_was_sent(
    repo: Repository, clock: FakeClock
) -> None:
    run = new_run(repo)
    clock.advance(5)
    repo.mark_published(run.id)
    assert repo.get_run(run.id).published_at == clock.now


def test_list_runs_returns_newest_first_and_never_an_evaluation_job(
    repo: Repository,
) -> None:
    first, second = new_run(repo), new_run(repo)
    job = new_eval_job(repo, first.id)

    assert [run.id for run in repo.list_runs()] == [second.id, first.id]
    assert [run.id for run in repo.list_runs(kind=None)] == [second.id, first.id]
    assert repo.list_runs(kind=JobKind.EVAL) == []
    assert [job.id for job in repo.list_evaluation_jobs()] == [job.id]


def test_evaluation_jobs_take_ids_of_their_own_so_training_run_ids_do_not_jump(
    repo: Repository,
) -> None:
    first = new_run(repo)
    jobs = [new_eval_job(repo, first.id) for _ in range(3)]
    second = new_run(repo)

    assert second.id == first.id + 1
    assert [job.id for job in jobs] == [1, 2, 3]
    assert repo.get_evaluation_job(jobs[0].id).label == "eval 1"
    assert repo.get_run(1).label == "run 1"


def test_an_evaluation_job_of_a_missing_run_is_refused(repo: Repository) -> None:
    with pytest.raises(RunNotFoundError):
        new_eval_job(repo, 99)
    assert repo.list_evaluation_jobs() == []


def test_a_missing_evaluation_job_says_where_the_jobs_are_listed(repo: Repository) -> None:
    with pytest.raises(EvaluationJobNotFoundError, match="trainq runs list --evals"):
        repo.get_evaluation_job(5)


def test_list_runs_filters_by_status_tags_name_and_limit(repo: Repository) -> None:
    tagged = new_run(repo, tags={"team": "vision", "size": "small"}, name="alpha")
    other_team = new_run(repo, tags={"team": "nlp", "size": "small"}, name="alpha")
    untagged = new_run(repo, name="beta")
    claim(repo, untagged.id)

    assert [r.id for r in repo.list_runs(statuses=[RunStatus.RUNNING])] == [untagged.id]
    assert [r.id for r in repo.list_runs(statuses=[RunStatus.QUEUED, RunStatus.RUNNING])] == [
        untagged.id,
        other_team.id,
        tagged.id,
    ]
    assert [r.id for r in repo.list_runs(tags={"team": "vision"})] == [tagged.id]
    assert [r.id for r in repo.list_runs(tags={"size": "small"})] == [other_team.id, tagged.id]
    assert [r.id for r in repo.list_runs(tags={"size": "small", "team": "nlp"})] == [other_team.id]
    assert repo.list_runs(tags={"team": "robotics"}) == []
    assert [r.id for r in repo.list_runs(name="alpha")] == [other_team.id, tagged.id]
    assert [r.id for r in repo.list_runs(limit=2)] == [untagged.id, other_team.id]
    assert [r.id for r in repo.list_runs(tags={"size": "small"}, limit=1)] == [other_team.id]


def test_count_runs_by_status_includes_every_status_and_counts_kinds_apart(
    repo: Repository,
) -> None:
    new_run(repo)
    claim(repo, new_run(repo).id)
    new_eval_job(repo, 1)

    assert repo.count_runs_by_status() == {
        RunStatus.QUEUED: 1,
        RunStatus.RUNNING: 1,
        RunStatus.SUCCEEDED: 0,
        RunStatus.FAILED: 0,
        RunStatus.CANCELLED: 0,
    }
    assert repo.count_runs_by_status(JobKind.TRAIN)[RunStatus.QUEUED] == 1
    assert repo.count_runs_by_status(JobKind.EVAL)[RunStatus.QUEUED] == 1


def test_cancelling_a_queued_run_cancels_it_at_once(repo: Repository, clock: FakeClock) -> None:
    run = repo.request_cancel(new_run(repo).id)
    assert run.status is RunStatus.CANCELLED
    assert run.finished_at == clock.now
    assert repo.claim_run(run.id, owner="w", worker_host="h", lease_ttl_s=LEASE_TTL_S) is None


def test_cancelling_a_running_run_flags_it_for_its_worker(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)

    flagged = repo.request_cancel(run.id)

    assert flagged.status is RunStatus.RUNNING
    assert flagged.cancel_requested
    assert repo.renew_lease(run.id, run.attempt, LEASE_TTL_S).cancel_requested
    finished = repo.finish_run(run.id, run.attempt, RunStatus.CANCELLED)
    assert finished.status is RunStatus.CANCELLED


def test_cancelling_a_finished_run_says_it_already_finished(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    repo.finish_run(run.id, run.attempt, RunStatus.SUCCEEDED)
    with pytest.raises(InvalidStateError, match="already finished with status succeeded"):
        repo.request_cancel(run.id)


def test_finish_run_stores_summary_error_device_and_clears_the_lease(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    clock.advance(3)
    finished = repo.finish_run(
        run.id,
        run.attempt,
        RunStatus.FAILED,
        summary={"final_loss": math.nan, "steps_per_s": 1234.5, "history": [1.0, math.inf]},
        error="loss became NaN at step 17",
        device="CPU:0",
    )
    assert finished.status is RunStatus.FAILED
    assert finished.finished_at == clock.now
    assert (finished.lease_owner, finished.lease_expires_at) == (None, None)
    assert finished.device == "CPU:0"
    assert finished.error == "loss became NaN at step 17"
    # JSON has no NaN: non-finite summary values are stored as null, by design.
    assert finished.summary == {"final_loss": None, "steps_per_s": 1234.5, "history": [1.0, None]}
    assert repo.get_run(run.id) == finished


def test_a_run_taken_over_shows_no_device_until_its_new_attempt_says_where_it_trains(
    repo: Repository, clock: FakeClock
) -> None:
    first = claim(repo, new_run(repo).id, owner="worker-1")
    repo.record_chunk(first.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, device="GPU:0 (H100)")
    assert repo.get_run(first.id).device == "GPU:0 (H100)"
    clock.advance(LEASE_TTL_S + 1)  # the worker died; another takes the run over
    second = claim(repo, first.id, owner="worker-2")
    assert (second.attempt, second.device) == (2, None)  # not where attempt 1 trained
    repo.record_chunk(second.id, 2, chunk(101, 100), lease_ttl_s=LEASE_TTL_S, device="CPU:0")
    assert repo.get_run(first.id).device == "CPU:0"


def test_finishing_twice_with_the_same_attempt_and_status_is_harmless(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    first = repo.finish_run(run.id, run.attempt, RunStatus.SUCCEEDED, summary={"a": 1})
    assert repo.finish_run(run.id, run.attempt, RunStatus.SUCCEEDED) == first


def test_finish_run_refuses_a_non_terminal_status(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    with pytest.raises(InvalidStateError, match="terminal"):
        repo.finish_run(run.id, run.attempt, RunStatus.QUEUED)


def test_cancelling_a_queued_evaluation_job_cancels_it_and_it_is_never_claimed(
    repo: Repository,
) -> None:
    job = new_eval_job(repo, new_run(repo).id)
    cancelled = repo.cancel_job(job.id, kind=JobKind.EVAL)
    assert cancelled.status is RunStatus.CANCELLED and cancelled.label == f"eval {job.id}"
    assert (
        repo.claim_evaluation_job(job.id, owner="w", worker_host="h", lease_ttl_s=LEASE_TTL_S)
        is None
    )
    with pytest.raises(InvalidStateError, match=f"eval {job.id} already finished"):
        repo.cancel_job(job.id, kind=JobKind.EVAL)
