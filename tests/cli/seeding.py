"""Runs written straight through the repository, so screen tests need no training."""

from __future__ import annotations

from typing import Any

import numpy as np

from storage import Repository
from storage.records import JobKind, MetricChunk, RunRecord, RunStatus, TrainSummary
from worker.config import TrainConfig


def reversed_config(**fields: object) -> dict[str, object]:
    """A resolved config with its keys reversed, as PostgreSQL's JSONB may hand them back."""
    config = TrainConfig.model_validate({"seed": 5, **fields}).model_dump(mode="json")
    return dict(reversed(list(config.items())))


def queued_run(
    repository: Repository,
    *,
    queue: str = "train",
    name: str | None = None,
    tags: dict[str, str] | None = None,
    **fields: object,
) -> RunRecord:
    """A QUEUED training run on ``queue``."""
    config = reversed_config(**fields)
    return repository.create_run(
        kind=JobKind.TRAIN,
        config=config,
        seed=5,
        queue=queue,
        max_attempts=3,
        name=name,
        tags=tags,
    )


def running_run(repository: Repository, steps_done: int, loss: float, **fields: Any) -> int:
    """A RUNNING run whose first ``steps_done`` steps all had ``loss`` (and accuracy 0.5)."""
    run = queued_run(repository, **fields)
    claimed = repository.claim_run(run.id, owner="test:1:a", worker_host="test", lease_ttl_s=600)
    assert claimed is not None
    repository.record_chunk(
        run.id,
        claimed.attempt,
        MetricChunk(1, np.full(steps_done, loss, np.float32), np.full(steps_done, 0.5, np.float32)),
        lease_ttl_s=600,
    )
    return run.id


def succeeded_run(
    repository: Repository, *, steps: int = 1000, wall_steps_per_s: float = 500.0, **fields: Any
) -> RunRecord:
    """A SUCCEEDED run with a summary, as a worker would leave it."""
    run_id = running_run(
        repository,
        steps,
        0.75,
        steps=steps,
        chunk_steps=steps,
        checkpoint_every_steps=steps,
        **fields,
    )
    summary = TrainSummary(
        steps_done=steps,
        steps_run=steps,
        completed=True,
        device="CPU:0",
        wall_s=steps / wall_steps_per_s,
        wall_steps_per_s=wall_steps_per_s,
        training_steps_per_s=4 * wall_steps_per_s,
        final_loss=0.75,
        final_accuracy=0.5,
        final_window_steps=min(steps, 500),
    )
    attempt = repository.get_run(run_id).attempt
    return repository.finish_run(
        run_id, attempt, RunStatus.SUCCEEDED, summary=summary.to_json(), device="CPU:0"
    )
