"""How a run's attempt history looks: the ``attempt_history`` JSON list of ``trainq runs show``,
its table and CSV rows, and the rows of the dashboard's Attempts table.

The JSON key is ``attempt_history``: ``attempts`` is already the run's attempt count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from api_cli.live import format_duration

if TYPE_CHECKING:
    from storage.records import AttemptRecord

#: The ``trainq runs show`` attempts table; host, device and error wrap at 80 columns.
ATTEMPT_TABLE_HEADER = ("att.", "host", "device", "started", "ended", "took", "outcome", "error")
ATTEMPT_TABLE_WRAP = ("host", "device", "error")
#: Shown while an attempt has not ended.
RUNNING = "running"


def attempt_dict(attempt: AttemptRecord) -> dict[str, Any]:
    """The JSON form of one attempt (times ISO 8601; ``outcome`` null while it runs)."""
    return {
        "number": attempt.number,
        "attempt": attempt.attempt,
        "worker_host": attempt.worker_host,
        "lease_owner": attempt.lease_owner,
        "device": attempt.device,
        "started_at": _iso(attempt.started_at),
        "ended_at": None if attempt.ended_at is None else _iso(attempt.ended_at),
        "duration_s": attempt.duration_s,
        "outcome": None if attempt.outcome is None else attempt.outcome.value,
        "steps_at_start": attempt.steps_at_start,
        "steps_at_end": attempt.steps_at_end,
        "error": attempt.error,
    }


def attempt_table_rows(history: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows of the ``runs show`` attempts table, from ``attempt_dict`` forms."""
    return [
        (
            item["attempt"],
            item["worker_host"],
            item["device"],
            _short(item["started_at"]),
            _short(item["ended_at"]),
            None if item["duration_s"] is None else format_duration(item["duration_s"]),
            item["outcome"] or RUNNING,
            item["error"],
        )
        for item in history
    ]


def attempt_csv_rows(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """``field,value`` rows of ``runs show --format csv``: ``attempt.<number>.<field>``."""
    return [
        (f"attempt.{item['number']}.{name}", value)
        for item in history
        for name, value in item.items()
        if name != "number"
    ]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _short(moment: str | None) -> str | None:
    """``2026-12-02T03:04:05+00:00`` → ``12-02 03:04:05`` (UTC, like the run list)."""
    if moment is None:
        return None
    return datetime.fromisoformat(moment).strftime("%m-%d %H:%M:%S")
