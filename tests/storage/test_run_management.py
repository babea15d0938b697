"""Managing runs after the fact: rename, note, tags, archive, delete (runs, or a sweep with its
trials), and SQLite's VACUUM; on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest

from storage import Database, Repository, RunStatus
from storage.errors import (
    InvalidStateError,
    InvalidValueError,
    RunNotFoundError,
    SweepNotFoundError,
)
from storage.sweep_records import PlannedTrial, SweepStatus
from storage.validation import MAX_NAME_CHARS, MAX_NOTE_CHARS, MAX_TAGS
from tests.storage.support import (
    LEASE_TTL_S,
    WEIGHTS,
    chunk,
    claim,
    claim_eval,
    count_rows,
    execute_sql,
    new_eval_job,
    new_run,
)

#: Every table with a foreign key to ``runs.id``.
RUN_TABLES = (
    "metric_chunks",
    "checkpoints",
    "evaluations",
    "evaluation_jobs",
    "validation_metrics",
    "rung_results",
    "run_attempts",
)
#: One checkpoint of the seed's shape: 784x10 + 10 float32 and the blob's header.
WEIGHT_BYTES = (784 * 10 + 10) * 4


def finished_run(repo: Repository, run_id: int | None = None, attempt: int | None = None) -> int:
    """A SUCCEEDED run (new, or ``run_id`` claimed at ``attempt``) with 100 steps of metrics, a
    checkpoint at 50, final weights at 100, a validation row, an attempt and an evaluation made
    by an evaluation job."""
    run_id = run_id or new_run(repo).id
    attempt = attempt or claim(repo, run_id).attempt
    repo.record_chunk(run_id, attempt, chunk(1, 50), lease_ttl_s=60, checkpoint=WEIGHTS)
    repo.record_chunk(run_id, attempt, chunk(51, 50), lease_ttl_s=60)
    repo.record_validation(run_id, 50, 0.5, 0.8)
    repo.finish_run(run_id, attempt, RunStatus.SUCCEEDED, final_weights=WEIGHTS)
    job = claim_eval(repo, new_eval_job(repo, run_id).id)
    repo.save_evaluation(
        run_id=run_id,
        checkpoint_step=100,
        split="test",
        loss=0.5,
        accuracy=0.8,
        per_class_accuracy=[0.8] * 10,
        confusion=[[1] * 10] * 10,
        job_id=job.id,
        job_attempt=job.attempt,
    )
    repo.finish_evaluation_job(job.id, job.attempt, RunStatus.SUCCEEDED)
    return run_id


def rows_of(db: Database, run_id: int) -> dict[str, int]:
    return {table: count_rows(db, table, run_id) for table in RUN_TABLES}


def test_a_run_is_renamed_and_annotated_and_an_empty_text_clears_either(repo: Repository) -> None:
    run = new_run(repo, name="first try")

    assert repo.rename_run(run.id, "baseline, lr 0.01").name == "baseline, lr 0.01"
    noted = repo.set_run_note(run.id, "diverged after step 4000?\nsee the plot")
    assert noted.note == "diverged after step 4000?\nsee the plot"
    assert repo.get_run(run.id).note == noted.note
    assert repo.rename_run(run.id, "").name is None
    assert repo.set_run_note(run.id, "").note is None


def test_a_name_or_note_too_long_is_refused_and_nothing_changes(repo: Repository) -> None:
    run = new_run(repo, name="kept")

    with pytest.raises(InvalidValueError, match=f"at most {MAX_NAME_CHARS}"):
        repo.rename_run(run.id, "x" * (MAX_NAME_CHARS + 1))
    with pytest.raises(InvalidValueError, match="at most 10,000"):
        repo.set_run_note(run.id, "x" * (MAX_NOTE_CHARS + 1))
    assert (repo.get_run(run.id).name, repo.get_run(run.id).note) == ("kept", None)
    with pytest.raises(RunNotFoundError, match="no run with id 99"):
        repo.rename_run(99, "x")


def test_tags_are_added_replaced_and_removed_and_filter_the_listing(repo: Repository) -> None:
    run = new_run(repo, tags={"team": "vision"})

    tagged = repo.tag_run(run.id, {"team": "nlp", "stage": "final"})
    assert tagged.tags == {"team": "nlp", "stage": "final"}
    assert repo.list_runs(tags={"stage": "final"}) == [tagged]
    assert repo.untag_run(run.id, ["team"]).tags == {"stage": "final"}
    with pytest.raises(InvalidValueError, match=r"run 1 has no tag 'team' \(its tags: stage\)"):
        repo.untag_run(run.id, ["stage", "team"])
    assert repo.get_run(run.id).tags == {"stage": "final"}  # all or nothing


def test_tags_are_checked_like_at_submission(repo: Repository) -> None:
    run = new_run(repo, tags={"a": "1"})

    with pytest.raises(InvalidValueError, match="tag key 'bad key'"):
        repo.tag_run(run.id, {"bad key": "x"})
    with pytest.raises(InvalidValueError, match=f"at most {MAX_TAGS}"):
        repo.tag_run(run.id, {f"k{i}": "v" for i in range(MAX_TAGS)})  # 65 with "a"
    assert repo.get_run(run.id).tags == {"a": "1"}


def test_archived_runs_are_hidden_from_listings_unless_asked_for(repo: Repository) -> None:
    kept, archived = finished_run(repo), finished_run(repo)

    (marked,) = repo.archive_runs([archived])
    assert marked.archived_at is not None
    assert [run.id for run in repo.list_runs()] == [kept]
    assert [run.id for run in repo.list_runs(archived=True)] == [archived]
    assert [run.id for run in repo.list_runs(archived=None)] == [archived, kept]
    assert repo.get_run(archived).archived_at == marked.archived_at  # still found by id
    counts = [repo.count_runs_by_status(archived=a)[RunStatus.SUCCEEDED] for a in (False, True)]
    assert counts == [1, 1] and repo.count_runs_by_status()[RunStatus.SUCCEEDED] == 2
    (again,) = repo.archive_runs([archived])
    assert again.archived_at == marked.archived_at  # archiving twice keeps the first time
    assert repo.unarchive_runs([archived])[0].archived_at is None
    assert [run.id for run in repo.list_runs()] == [archived, kept]


def test_archiving_a_queued_or_running_run_is_refused_and_nothing_is_archived(
    repo: Repository,
) -> None:
    done, queued, running = finished_run(repo), new_run(repo).id, new_run(repo).id
    claim(repo, running)

    with pytest.raises(InvalidStateError) as refused:
        repo.archive_runs([done, queued, running])
    assert str(refused.value) == (
        f"run {queued} is queued, run {running} is running: cancel them first (`trainq cancel "
        f"{queued} {running}`), then archive them once they have ended; nothing was archived"
    )
    with pytest.raises(RunNotFoundError, match="no runs with ids 98, 99"):
        repo.archive_runs([done, 98, 99])
    assert repo.list_runs(archived=True) == []


def test_deleting_a_run_removes_its_rows_in_every_table_and_says_what_it_freed(
    repo: Repository, db: Database
) -> None:
    kept, deleted = finished_run(repo), finished_run(repo)
    before = rows_of(db, deleted)
    assert before == rows_of(db, kept) and all(before[t] for t in RUN_TABLES if t != "rung_results")

    removed = repo.delete_runs([deleted])

    assert removed.deleted and removed.run_ids == (deleted,)
    assert removed.metric_bytes == 100 * 4 * 2  # loss and accuracy, float32, 100 steps
    assert removed.checkpoints == 2 and removed.evaluations == 1
    assert removed.checkpoint_bytes == sum(c.size_bytes for c in repo.list_checkpoints(kept))
    assert removed.checkpoint_bytes >= 2 * WEIGHT_BYTES
    assert removed.freed_bytes == removed.metric_bytes + removed.checkpoint_bytes
    assert set(rows_of(db, deleted).values()) == {0}
    with pytest.raises(RunNotFoundError):
        repo.get_run(deleted)
    assert rows_of(db, kept) == before  # the other run is untouched
    assert [run.id for run in repo.list_runs(archived=None)] == [kept]


def test_a_dry_run_measures_the_same_and_deletes_nothing(repo: Repository, db: Database) -> None:
    run_id = finished_run(repo)
    rows = rows_of(db, run_id)

    preview = repo.delete_runs([run_id], dry_run=True)

    assert not preview.deleted and rows_of(db, run_id) == rows
    removed = repo.delete_runs([run_id])
    assert (preview.freed_bytes, preview.checkpoints) == (removed.freed_bytes, 2)


def test_deleting_a_queued_or_running_run_is_refused_with_how_to_stop_it(
    repo: Repository, db: Database
) -> None:
    done, running = finished_run(repo), new_run(repo).id
    claim(repo, running)

    with pytest.raises(InvalidStateError) as refused:
        repo.delete_runs([done, running])
    assert str(refused.value) == (
        f"run {running} is running: cancel it first (`trainq cancel {running}`), then delete it "
        "once it has ended; nothing was deleted"
    )
    assert rows_of(db, done)["metric_chunks"] == 2
    with pytest.raises(RunNotFoundError, match="no run with id 77"):
        repo.delete_runs([done, 77])
    assert repo.get_run(done).status is RunStatus.SUCCEEDED


def test_a_run_with_an_evaluation_in_progress_is_not_deleted(repo: Repository) -> None:
    run_id = finished_run(repo)
    job = new_eval_job(repo, run_id)

    with pytest.raises(InvalidStateError, match=f"evaluation job {job.id} of run {run_id} is"):
        repo.delete_runs([run_id])
    repo.cancel_job(job.id, kind=job.kind)
    assert repo.delete_runs([run_id]).run_ids == (run_id,)


def planned(trials: int) -> list[PlannedTrial]:
    config = {"learning_rate": 0.1, "steps": 100}
    return [PlannedTrial(params={"lr": 0.1}, config=config, seed=7, queue="train")] * trials


def finished_sweep(repo: Repository, trials: int = 2) -> tuple[int, list[int]]:
    """A SUCCEEDED sweep whose trials ran (with a rung result each)."""
    sweep = repo.create_sweep(
        name="s", spec={}, trials=planned(trials), max_concurrent=trials, max_attempts=2
    )
    runs = repo.fill_slots(sweep.id)
    for run in runs:
        attempt = claim(repo, run.id).attempt
        repo.decide_rung(
            sweep_id=sweep.id,
            rung_step=50,
            run_id=run.id,
            attempt=attempt,
            trial=run.trial or 0,
            objective=0.5,
            maximize=True,
            reduction_factor=3,
            lease_ttl_s=LEASE_TTL_S,
        )
        finished_run(repo, run.id, attempt)
    assert repo.get_sweep(sweep.id).status is SweepStatus.SUCCEEDED
    return sweep.id, [run.id for run in runs]


def test_a_sweep_is_archived_and_unarchived_with_its_trials(repo: Repository) -> None:
    sweep_id, trials = finished_sweep(repo)
    alone = finished_run(repo)

    archived = repo.archive_sweep(sweep_id)

    assert archived.archived_at is not None
    assert repo.list_sweeps() == [] and repo.list_sweeps(archived=True) == [archived]
    assert [run.id for run in repo.list_runs()] == [alone]
    assert sorted(run.id for run in repo.list_runs(sweep_id=sweep_id, archived=True)) == trials
    assert repo.unarchive_sweep(sweep_id).archived_at is None
    assert [sweep.id for sweep in repo.list_sweeps()] == [sweep_id]
    assert len(repo.list_runs()) == 3


def test_sweeps_are_counted_and_paged_without_loading_the_rest(repo: Repository) -> None:
    archived, _ = finished_sweep(repo)
    repo.archive_sweep(archived)
    others = [finished_sweep(repo)[0] for _ in range(4)]
    assert repo.count_sweeps() == 4 and repo.count_sweeps(archived=True) == 1
    assert repo.count_sweeps(archived=None) == 5
    newest_first = others[::-1]
    assert [s.id for s in repo.list_sweeps(limit=2, offset=1)] == newest_first[1:3]
    assert [s.id for s in repo.list_sweeps(limit=2, offset=3)] == newest_first[3:]
    assert repo.list_sweeps(limit=2, offset=4) == []
    assert [s.id for s in repo.list_sweeps(offset=4, archived=None)] == [archived]


def test_a_running_sweep_is_neither_archived_nor_deleted(repo: Repository) -> None:
    sweep = repo.create_sweep(
        name=None, spec={}, trials=planned(2), max_concurrent=1, max_attempts=2
    )
    repo.fill_slots(sweep.id)

    for verb, operation in (("archive", repo.archive_sweep), ("delete", repo.delete_sweep)):
        with pytest.raises(InvalidStateError, match=f"then {verb} it once its trials have ended"):
            operation(sweep.id)
    repo.cancel_sweep(sweep.id)  # its queued trial ends CANCELLED: nothing is active
    assert repo.delete_sweep(sweep.id).sweep_ids == (sweep.id,)
    with pytest.raises(SweepNotFoundError):
        repo.get_sweep(sweep.id)


def test_a_trial_is_deleted_only_with_its_sweep(repo: Repository, db: Database) -> None:
    sweep_id, trials = finished_sweep(repo)

    with pytest.raises(InvalidStateError, match=f"`trainq sweep delete {sweep_id}`"):
        repo.delete_runs([trials[0]])
    removed = repo.delete_sweep(sweep_id)

    assert removed.run_ids == tuple(trials) and removed.sweep_ids == (sweep_id,)
    assert removed.freed_bytes > 2 * 2 * WEIGHT_BYTES
    for run_id in trials:
        assert set(rows_of(db, run_id).values()) == {0}
    for table in ("sweeps", "sweep_trials", "rung_results", "runs"):
        assert execute_sql(db, f"SELECT COUNT(*) FROM {table}") == [(0,)], table


def test_vacuum_gives_a_sqlite_files_space_back_and_is_a_no_op_on_postgresql(
    repo: Repository, db: Database
) -> None:
    run_ids = [finished_run(repo) for _ in range(3)]
    repo.delete_runs(run_ids)

    freed = repo.reclaim_space()

    if db.dialect_name == "postgresql":
        assert freed is None
    else:
        assert freed is not None and freed >= 3 * 2 * WEIGHT_BYTES
