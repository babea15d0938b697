"""What each dashboard page shows, as plain JSON-safe data: the templates and the JSON endpoints
render the same dictionaries, so a polled update shows exactly what a reload would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from api_cli.class_names import run_class_names
from api_cli.comparison import HYPERPARAMETERS, compare_runs
from api_cli.dataset_view import recorded_data_text, run_data, run_data_text
from api_cli.evaluation_json import evaluation_dict
from api_cli.sdk import Client
from storage.errors import InvalidValueError
from storage.records import AttemptRecord, EvaluationRecord, RunRecord, RunStatus
from storage.validation import MAX_ID

if TYPE_CHECKING:
    from storage import Repository

#: Runs per page of the runs list, by default and at most (``?per_page=``).
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: How much of a refused filter an error message repeats.
_ECHO_CHARS = 40


@dataclass(frozen=True)
class RunFilters:
    """The runs page's filters, as typed in its form (empty means "any")."""

    status: str = ""
    tag: str = ""  # KEY=VALUE
    sweep: str = ""
    page: int = 1
    per_page: int = PAGE_SIZE

    def tags(self) -> dict[str, str]:
        """The tag filter as a mapping (``{}`` when empty)."""
        if not self.tag:
            return {}
        key, _, value = self.tag.partition("=")
        return {key.strip(): value.strip()}

    def query(self, page: int) -> str:
        """The query string of this filter on another page."""
        from urllib.parse import urlencode

        fields = {"status": self.status, "tag": self.tag, "sweep": self.sweep, "page": str(page)}
        if self.per_page != PAGE_SIZE:
            fields["per_page"] = str(self.per_page)
        return urlencode({key: value for key, value in fields.items() if value})

    def check(self) -> None:
        """Refuse a filter the page cannot apply, naming the field and what it accepts.

        Raises:
            InvalidValueError: the status, sweep or tag filter is malformed.
        """
        if self.status and self.status not in {s.value for s in RunStatus}:
            raise InvalidValueError(
                f"status={self.status[:_ECHO_CHARS]!r} is not a status; use one of "
                + ", ".join(s.value for s in RunStatus)
            )
        # A sweep id the database cannot hold (2^63) is refused here, not by the driver.
        if self.sweep and not (
            self.sweep.isascii()
            and self.sweep.isdigit()
            and len(self.sweep) <= len(str(MAX_ID))
            and 1 <= int(self.sweep) <= MAX_ID
        ):
            raise InvalidValueError(
                f"sweep={self.sweep[:_ECHO_CHARS]!r} is not a sweep id (a number from 1 to "
                f"{MAX_ID})"
            )
        if self.tag and "=" not in self.tag:
            raise InvalidValueError(
                f"tag={self.tag[:_ECHO_CHARS]!r}: write the tag filter as KEY=VALUE"
            )


def runs_page(repository: Repository, filters: RunFilters, now: datetime) -> dict[str, Any]:
    """The runs list: one row per training run of the page, and the paging.

    Raises:
        InvalidValueError: a filter is malformed (the page shows it as a 400).
    """
    filters.check()
    statuses = [RunStatus(filters.status)] if filters.status else []
    sweep_id = int(filters.sweep) if filters.sweep else None
    page = repository.page_training_runs(
        statuses=statuses,
        tags=filters.tags(),
        sweep_id=sweep_id,
        offset=(filters.page - 1) * filters.per_page,
        limit=filters.per_page,
    )
    ids = [run.id for run in page.runs]
    latest = repository.latest_metrics(ids)
    validation = repository.latest_validation_accuracy(ids)
    evaluations = repository.list_evaluations_of_runs(ids)
    rows = []
    for run in page.runs:
        newest = latest.get(run.id)
        summary = run.train_summary
        rows.append(
            {
                "id": run.id,
                "name": run.name or "",
                "status": run.status.value,
                "steps_done": run.steps_done,
                "steps": int(run.config.get("steps", 0)),
                "loss": summary.final_loss if summary else (newest.loss if newest else None),
                "accuracy": summary.final_accuracy
                if summary
                else (newest.accuracy if newest else None),
                "val_accuracy": validation.get(run.id),
                "test_accuracy": _test_accuracy(evaluations.get(run.id, [])),
                "device": run.device or "",
                "data": recorded_data_text(run),
                "age": age_text(now, run.created_at),
                "sweep_id": run.sweep_id,
                "tags": run.tags,
                "pruned_at": pruned_at(run),
            }
        )
    pages = max(1, math.ceil(page.total / filters.per_page))
    return {"rows": rows, "total": page.total, "page": filters.page, "pages": pages}


def pruned_at(run: RunRecord) -> int | None:
    """The step a sweep's ASHA stopped the run at, or None when it was not pruned."""
    summary = run.train_summary
    if summary is None or not summary.pruned:
        return None
    return summary.pruned_at_step if summary.pruned_at_step is not None else run.steps_done


def _test_accuracy(evaluations: Sequence[EvaluationRecord]) -> float | None:
    tests = [e for e in evaluations if e.split == "test"]
    return tests[-1].accuracy if tests else None


def age_text(now: datetime, then: datetime) -> str:
    """How long ago, in the largest unit that fits: ``42s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(0.0, (now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


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
