"""How records look to users: the dictionaries behind ``--json`` and the rows behind tables."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.records import CheckpointInfo, EvaluationRecord, RunRecord

RUN_LIST_HEADER = (
    "id",
    "kind",
    "name",
    "status",
    "steps",
    "attempts",
    "loss",
    "accuracy",
    "tags",
    "created",
)


def run_dict(run: RunRecord) -> dict[str, Any]:
    """The JSON form of a run (every hyperparameter, seed included, is in ``config``)."""
    return {
        "id": run.id,
        "run_id": run.id,
        "kind": run.kind.value,
        "name": run.name,
        "status": run.status.value,
        "config": run.config,
        "seed": run.seed,
        "queue": run.queue,
        "steps_done": run.steps_done,
        "attempts": run.attempt,
        "max_attempts": run.max_attempts,
        "cancel_requested": run.cancel_requested,
        "device": run.device,
        "worker_host": run.worker_host,
        "error": run.error,
        "summary": run.summary,
        "tags": run.tags,
        "sweep_id": run.sweep_id,
        "trial": run.trial,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }


def run_detail_dict(
    run: RunRecord, evaluations: list[EvaluationRecord], checkpoints: list[CheckpointInfo]
) -> dict[str, Any]:
    """``run_dict`` plus the run's evaluations and checkpoints."""
    detail = run_dict(run)
    detail["evaluations"] = [evaluation_dict(evaluation) for evaluation in evaluations]
    detail["checkpoints"] = [
        {"step": info.step, "sha256": info.sha256, "size_bytes": info.size_bytes}
        for info in checkpoints
    ]
    return detail


def evaluation_dict(evaluation: EvaluationRecord) -> dict[str, Any]:
    """The JSON form of an evaluation."""
    return {
        "id": evaluation.id,
        "run_id": evaluation.run_id,
        "checkpoint_step": evaluation.checkpoint_step,
        "split": evaluation.split,
        "loss": evaluation.loss,
        "accuracy": evaluation.accuracy,
        "per_class_accuracy": evaluation.per_class_accuracy,
        "confusion": evaluation.confusion,
        "job_id": evaluation.job_id,
        "created_at": _iso(evaluation.created_at),
    }


def run_list_row(run: RunRecord) -> tuple[Any, ...]:
    """One line of ``trainq runs list --format csv`` (full values, ``RUN_LIST_HEADER`` order)."""
    summary = run.summary or {}
    return (
        run.id,
        run.kind.value,
        run.name,
        run.status.value,
        f"{run.steps_done}/{run.config.get('steps', '-')}" if run.kind.value == "train" else "-",
        run.attempt,
        summary.get("final_loss", summary.get("loss")),
        summary.get("final_accuracy", summary.get("accuracy")),
        run.tags,
        _iso(run.created_at),
    )


#: The table drops the kind (a listing shows one kind) and shortens names to fit 80 columns.
RUN_TABLE_HEADER = ("id", "name", "status", "steps", "att.", "loss", "acc.", "tags", "created")


def run_table_row(run: RunRecord) -> tuple[Any, ...]:
    """One line of the ``trainq runs list`` table."""
    full = run_list_row(run)
    steps = str(run.steps_done) if run.status.terminal and run.kind.value == "train" else full[4]
    created = run.created_at.strftime("%m-%d %H:%M")
    return (full[0], full[2], full[3], steps, full[5], full[6], full[7], full[8], created)


EVAL_TABLE_HEADER = ("id", "status", "run", "checkpoint", "split", "loss", "accuracy", "created")


def eval_table_row(job: RunRecord) -> tuple[Any, ...]:
    """One line of the ``trainq runs list --evals`` table."""
    summary = job.summary or {}
    return (
        job.id,
        job.status.value,
        job.config.get("run_id"),
        job.config.get("checkpoint_step"),
        job.config.get("split"),
        summary.get("loss"),
        summary.get("accuracy"),
        job.created_at.strftime("%m-%d %H:%M"),
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
