"""What each dashboard page shows, as plain JSON-safe data: the templates and the JSON endpoints
render the same dictionaries, so a polled update shows exactly what a reload would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from api_cli.class_names import run_class_names
from api_cli.comparison import HYPERPARAMETERS, compare_runs

# The runs page lives in runs_view; its names stay importable from here (__all__).
from api_cli.dashboard.runs_view import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    RunFilters,
    RunsQueryError,
    age_text,
    header,
    pruned_at,
    runs_page,
)
from api_cli.dataset_view import run_data, run_data_text
from api_cli.evaluation_json import evaluation_dict
from api_cli.sdk import Client
from storage.records import AttemptRecord, RunRecord

if TYPE_CHECKING:
    from storage import Repository

__all__ = [
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "RunFilters",
    "RunsQueryError",
    "age_text",
    "compare_page",
    "curve_json",
    "finite",
    "header",
    "pruned_at",
    "run_json",
    "run_page",
    "runs_page",
]


def run_page(repository: Repository, run_id: int, now: datetime) -> dict[str, Any]:
    """One run: its dataset, hyperparameters, checkpoints, evaluations (the dataset's class
    names), attempts.

    Raises:
        RunNotFoundError: no run has this id.
    """
    run = repository.get_run(run_id)
    summary = run.train_summary
    class_names = run_class_names(repository, run_id)
    return {
        "run": run_json(run, now),
        "data": run_data_text(run_data(repository, run)),
        "hyperparameters": sorted(run.config.items()),
        # No validation series (nor its legend) on a run that holds out no images.
        "validation_split": int(run.config.get("val_size") or 0) > 0,
        "summary": summary.to_json() if summary else None,
        "checkpoints": [
            {
                "step": c.step,
                "size_bytes": c.size_bytes,
                "sha256": c.sha256[:12],
                "at": c.created_at,
            }
            for c in repository.list_checkpoints(run_id)
        ],
        "evaluations": [
            evaluation_dict(e, class_names) for e in repository.list_evaluations(run_id)
        ],
        "attempt_history": [_attempt_row(a) for a in repository.list_attempts(run_id)],
        "attempt": {
            "attempt": run.attempt,
            "max_attempts": run.max_attempts,
            "worker_host": run.worker_host or "",
            "lease_owner": run.lease_owner or "",
            "lease_expires_at": run.lease_expires_at,
            "error": run.error or "",
        },
    }


def _attempt_row(attempt: AttemptRecord) -> dict[str, Any]:
    """One row of the run page's attempt history (times UTC, to the second)."""
    from api_cli.live import format_duration

    duration = attempt.duration_s
    return {
        "attempt": attempt.attempt,
        "worker_host": attempt.worker_host or "-",
        "device": attempt.device or "-",
        "started": f"{attempt.started_at:%Y-%m-%d %H:%M:%S}",
        "ended": "-" if attempt.ended_at is None else f"{attempt.ended_at:%Y-%m-%d %H:%M:%S}",
        "duration": "-" if duration is None else format_duration(duration),
        "outcome": "running" if attempt.outcome is None else attempt.outcome.value,
        "error": attempt.error or "",
    }


def run_json(run: RunRecord, now: datetime) -> dict[str, Any]:
    """A run's identity and progress, for headers and polling."""
    return {
        "id": run.id,
        "name": run.name or "",
        "status": run.status.value,
        "steps_done": run.steps_done,
        "steps": int(run.config.get("steps", 0)),
        "device": run.device or "",
        "age": age_text(now, run.created_at),
        "tags": run.tags,
        "sweep_id": run.sweep_id,
        "trial": run.trial,
        "pruned_at": pruned_at(run),
    }


def curve_json(repository: Repository, run_id: int, max_points: int) -> dict[str, Any]:
    """A run's downsampled loss and accuracy curves and its validation points (for polling).

    Raises:
        RunNotFoundError: no run has this id.
    """
    run = repository.get_run(run_id)
    curve = repository.read_metric_curve(run_id, max_points=max_points)
    validation = repository.list_validation(run_id)
    return {
        "run_id": run_id,
        "status": run.status.value,
        "steps_done": run.steps_done,
        "device": run.device or "",
        "bucket_steps": curve.bucket_steps,
        "steps": list(curve.steps),
        "loss": list(curve.loss),
        "accuracy": list(curve.accuracy),
        "validation": {
            "steps": [v.step for v in validation],
            "accuracy": [finite(v.accuracy) for v in validation],
        },
    }


def finite(value: float | None) -> float | None:
    """The value, or None for NaN and infinities (JSON has neither)."""
    return value if value is not None and math.isfinite(value) else None


def compare_page(repository: Repository, run_ids: Sequence[int]) -> dict[str, Any]:
    """Selected runs side by side: differing hyperparameters first, then the rest.

    Raises:
        RunNotFoundError: an id matches no run.
        InvalidConfigError: an id is an evaluation job.
    """
    client = Client(repository=repository)
    runs = client.training_runs(run_ids)
    comparison = compare_runs(runs, [client.latest_evaluations(run.id) for run in runs])
    return {
        "run_ids": [run.id for run in runs],
        "differing": list(comparison.differing),
        "rows": [
            {
                "field": name,
                "section": comparison.sections[name],
                "differs": name in comparison.differing,
                "values": [_cell(run[name]) for run in comparison.runs],
            }
            for name in comparison.fields
            if name != "run_id"
        ],
        "hyperparameters": HYPERPARAMETERS,
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
