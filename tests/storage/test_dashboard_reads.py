"""The dashboard's reads: paged training runs, newest numbers, downsampled curves, read-only."""

from __future__ import annotations

import numpy as np
import pytest

from storage import Database, InvalidValueError, MetricChunk, Repository, RunStatus
from storage.errors import StorageError
from tests.storage.support import LEASE_TTL_S, claim, claim_eval, new_eval_job, new_run


def record_steps(repo: Repository, run_id: int, attempt: int, n_steps: int, chunk: int) -> None:
    for first in range(1, n_steps + 1, chunk):
        steps = np.arange(first, min(first + chunk, n_steps + 1), dtype=np.float32)
        repo.record_chunk(
            run_id,
            attempt,
            MetricChunk(first_step=first, loss=steps, accuracy=steps / n_steps),
            lease_ttl_s=LEASE_TTL_S,
        )


def test_a_long_curve_comes_back_as_at_most_max_points_bucket_means(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    record_steps(repo, run.id, run.attempt, 10_000, 250)
    curve = repo.read_metric_curve(run.id, max_points=1000)
    assert len(curve.steps) == 1000 and curve.bucket_steps == 10
    assert curve.steps[0] == 10 and curve.steps[-1] == 10_000 == curve.last_step
    assert curve.loss[0] == pytest.approx(5.5)  # the mean of steps 1..10
    assert curve.loss[-1] == pytest.approx(9995.5)
    assert curve.accuracy[-1] == pytest.approx(0.99955, rel=1e-5)


def test_a_short_curve_keeps_every_step_and_a_diverged_bucket_is_a_gap(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    loss = np.array([1.0, np.nan, 3.0], dtype=np.float32)
    repo.record_chunk(run.id, run.attempt, MetricChunk(1, loss, loss), lease_ttl_s=LEASE_TTL_S)
    curve = repo.read_metric_curve(run.id)
    assert curve.steps == (1, 2, 3) and curve.loss == (1.0, None, 3.0)
    assert repo.read_metric_curve(new_run(repo).id).steps == ()


def test_the_runs_page_lists_training_runs_only_newest_first_with_a_total(
    repo: Repository,
) -> None:
    runs = [new_run(repo, tags={"team": "a" if i % 2 else "b"}) for i in range(5)]
    new_eval_job(repo, runs[0].id)  # its own table: never on the runs page
    page = repo.page_training_runs(offset=1, limit=2)
    assert page.total == 5
    assert [r.id for r in page.runs] == [runs[3].id, runs[2].id]
    tagged = repo.page_training_runs(tags={"team": "a"})
    assert [r.id for r in tagged.runs] == [runs[3].id, runs[1].id] and tagged.total == 2
    claim(repo, runs[0].id)
    running = repo.page_training_runs(statuses=[RunStatus.RUNNING])
    assert [r.id for r in running.runs] == [runs[0].id]
    with pytest.raises(InvalidValueError):
        repo.page_training_runs(offset=-1)


def test_the_newest_chunk_and_validation_give_each_runs_latest_numbers(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    record_steps(repo, run.id, run.attempt, 300, 100)
    repo.record_validation(run.id, 100, 0.9, 0.5)
    repo.record_validation(run.id, 200, 0.8, 0.7)
    silent = new_run(repo)
    latest = repo.latest_metrics([run.id, silent.id])
    assert list(latest) == [run.id]
    assert latest[run.id].last_step == 300
    assert latest[run.id].loss == pytest.approx(250.5)  # mean of steps 201..300
    assert repo.latest_validation_accuracy([run.id, silent.id]) == {run.id: 0.7}


def test_a_read_only_database_reads_but_refuses_every_write(db: Database) -> None:
    writer = Repository(db)
    run = new_run(writer)
    url = db.engine.url.render_as_string(hide_password=False)
    reader = Repository(Database(url, read_only=True))
    try:
        assert reader.get_run(run.id).id == run.id
        with pytest.raises(StorageError):
            new_run(reader)
        assert [r.id for r in writer.list_runs()] == [run.id]
        # A run written after the reader opened is seen: a long-lived reader is never stale.
        later = new_run(writer)
        assert reader.page_training_runs().total == 2 and reader.get_run(later.id)
    finally:
        reader._db.dispose(close=True)


def test_several_runs_evaluations_come_back_per_run_in_one_read(repo: Repository) -> None:
    first, second, never = (claim(repo, new_run(repo).id) for _ in range(3))
    for run, split in ((first, "test"), (first, "train"), (second, "test")):
        job = claim_eval(repo, new_eval_job(repo, run.id).id)
        repo.save_evaluation(
            run_id=run.id,
            checkpoint_step=100,
            split=split,
            loss=0.5,
            accuracy=0.8,
            per_class_accuracy=[0.8] * 10,
            confusion=[[1] * 10] * 10,
            job_id=job.id,
            job_attempt=job.attempt,
        )
    found = repo.list_evaluations_of_runs([first.id, second.id, never.id])
    assert sorted(found) == [first.id, second.id]
    assert [e.split for e in found[first.id]] == ["test", "train"]
    assert found[second.id] == repo.list_evaluations(second.id)


def test_overlapping_chunks_of_a_resume_curve_with_the_earliest_write_winning(
    repo: Repository,
) -> None:
    run = claim(repo, new_run(repo).id)
    ones, twos = np.ones(100, np.float32), np.full(100, 2.0, np.float32)
    repo.record_chunk(run.id, run.attempt, MetricChunk(1, ones, ones), lease_ttl_s=LEASE_TTL_S)
    repo.record_chunk(run.id, run.attempt, MetricChunk(51, twos, twos), lease_ttl_s=LEASE_TTL_S)
    curve = repo.read_metric_curve(run.id, max_points=3)
    assert curve.steps == (50, 100, 150) and curve.loss == (1.0, 1.0, 2.0)
