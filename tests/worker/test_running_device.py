"""A running run says where it runs: the device is recorded with the attempt's first chunk, not
only when the run finishes (`runs show` and the dashboard read it from the run)."""

from __future__ import annotations

from pathlib import Path

from storage import Database, JobKind, Repository, RunStatus, Settings
from worker.config import TrainConfig
from worker.data import FashionMnist
from worker.jobs import JobContext, execute_job

CONFIG = TrainConfig(steps=400, chunk_steps=100, checkpoint_every_steps=100, seed=3, device="cpu")


def test_the_device_is_on_the_run_after_its_first_chunk_while_it_runs(
    tmp_path: Path, fashion_mnist: FashionMnist
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.upgrade()
    repository = Repository(database)
    run_id = repository.create_run(
        kind=JobKind.TRAIN,
        config=CONFIG.model_dump(mode="json"),
        seed=CONFIG.seed_value,
        queue="train",
        max_attempts=3,
    ).id
    seen: list[tuple[RunStatus, str | None]] = []

    def after_the_first_chunk() -> bool:
        # Asked at every chunk boundary: look at the run as another process would, mid-run.
        run = repository.get_run(run_id)
        if run.steps_done == 0:
            return False
        seen.append((run.status, run.device))
        return True  # hand the run back: it is still unfinished, so only the chunk set it

    settings = Settings(home_dir=tmp_path, database_url="unused", broker_url=None, data_dir=None)
    context = JobContext.for_this_process(
        repository, settings, "test", hand_back_requested=after_the_first_chunk
    )
    handed_back = execute_job(context, run_id)

    assert seen == [(RunStatus.RUNNING, "CPU:0")]
    assert handed_back is not None and handed_back.status is RunStatus.QUEUED
    assert [attempt.device for attempt in repository.list_attempts(run_id)] == ["CPU:0"]
    database.dispose(close=True)
