"""Several processes on one database at once: SQLite writers never see "database is locked",
and of processes racing to claim the same runs exactly one wins each."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

import numpy as np

from storage import Database, MetricChunk, Repository
from tests.storage.support import LEASE_TTL_S, claim, count_rows, new_run

PROCESSES = 4
CHUNKS_PER_PROCESS = 60
STEPS_PER_CHUNK = 100
RACED_RUNS = 40


def _write_chunks(url: str, run_id: int, barrier: Barrier) -> None:
    repo = Repository(Database(url))
    values = np.linspace(0, 1, STEPS_PER_CHUNK, dtype=np.float32)
    barrier.wait()
    for index in range(CHUNKS_PER_PROCESS):
        first_step = 1 + index * STEPS_PER_CHUNK
        repo.record_chunk(
            run_id, 1, MetricChunk(first_step, values, values), lease_ttl_s=LEASE_TTL_S
        )
        repo.read_metrics(run_id, first_step=first_step)  # readers in between the writers


def _claim_all(url: str, run_ids: list[int], owner: str, won_dir: str, barrier: Barrier) -> None:
    repo = Repository(Database(url))
    won = []
    for run_id in run_ids:
        barrier.wait()  # every process goes for the same run at the same moment
        if repo.claim_run(run_id, owner=owner, worker_host=owner, lease_ttl_s=LEASE_TTL_S):
            won.append(run_id)
    (Path(won_dir) / owner).write_text(" ".join(map(str, won)))


def _run_processes(target: object, argument_lists: list[tuple[object, ...]]) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(argument_lists))
    processes = [
        context.Process(target=target, args=(*arguments, barrier))  # type: ignore[arg-type]
        for arguments in argument_lists
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * len(processes)


def test_processes_writing_metrics_at_once_all_succeed_and_every_chunk_is_stored(
    db: Database,
) -> None:
    repo = Repository(db)
    run_ids = [claim(repo, new_run(repo).id).id for _ in range(PROCESSES)]
    url = db.engine.url.render_as_string(hide_password=False)

    _run_processes(_write_chunks, [(url, run_id) for run_id in run_ids])

    for run_id in run_ids:
        assert count_rows(db, "metric_chunks", run_id) == CHUNKS_PER_PROCESS
        assert repo.get_run(run_id).steps_done == CHUNKS_PER_PROCESS * STEPS_PER_CHUNK
        assert len(repo.read_metrics(run_id)) == CHUNKS_PER_PROCESS * STEPS_PER_CHUNK


def test_processes_racing_to_claim_the_same_runs_win_each_run_exactly_once(
    db: Database, tmp_path: Path
) -> None:
    repo = Repository(db)
    run_ids = [new_run(repo).id for _ in range(RACED_RUNS)]
    url = db.engine.url.render_as_string(hide_password=False)
    owners = [f"process-{index}" for index in range(3)]

    _run_processes(_claim_all, [(url, run_ids, owner, str(tmp_path)) for owner in owners])

    won = {owner: [int(i) for i in (tmp_path / owner).read_text().split()] for owner in owners}
    assert sorted(run_id for ids in won.values() for run_id in ids) == run_ids
    for owner, ids in won.items():
        for run_id in ids:
            run = repo.get_run(run_id)
            assert (run.attempt, run.lease_owner) == (1, owner)
