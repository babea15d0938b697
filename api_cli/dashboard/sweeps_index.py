"""The sweeps index (``/sweeps``): one row per sweep, newest first, from the same report as
``trainq sweep list`` (so the best trial and its metric agree with the CLI's)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from api_cli.dashboard.runs_view import ARCHIVED_CHOICES
from api_cli.dashboard.views import age_text, finite
from worker.sweep_report import SweepReport, is_finished, sweep_report

if TYPE_CHECKING:
    from datetime import datetime

    from storage import Repository

#: Sweeps per page of the index (each row reads its sweep's trials: a bounded amount of work).
SWEEPS_PER_PAGE = 25


def sweeps_index(
    repository: Repository, page: int, now: datetime, archived: str = ""
) -> dict[str, Any]:
    """The sweeps of page ``page`` (1-based), newest first, and the paging; archived sweeps
    as ``archived`` says (a key of ``ARCHIVED_CHOICES``: hidden, shown, or only them)."""
    which = ARCHIVED_CHOICES[archived]
    total = repository.count_sweeps(archived=which)  # counted, not loaded: only a page is
    shown = repository.list_sweeps(
        limit=SWEEPS_PER_PAGE, offset=(page - 1) * SWEEPS_PER_PAGE, archived=which
    )
    return {
        "rows": [_row(sweep_report(repository, sweep.id), now) for sweep in shown],
        "total": total,
        "page": page,
        "pages": max(1, math.ceil(total / SWEEPS_PER_PAGE)),
        "archived": archived,
        # How many the default view leaves out, so that it can say so.
        "hidden": repository.count_sweeps(archived=True) if archived == "" else 0,
    }


def _row(report: SweepReport, now: datetime) -> dict[str, Any]:
    sweep, best = report.sweep, report.best
    return {
        "id": sweep.id,
        "name": sweep.name or "",
        "status": sweep.status.value,
        "trials_done": sum(is_finished(t.status) for t in report.trials),
        "trials_pruned": sum(t.pruned for t in report.trials),
        "trials_total": len(report.trials),
        "metric": report.spec.objective.value,
        "goal": report.spec.goal.value,
        "best": finite(best.objective) if best else None,
        "best_trial": best.trial if best else None,
        "best_run_id": best.run_id if best else None,
        "created": f"{sweep.created_at:%Y-%m-%d %H:%M}",
        "age": age_text(now, sweep.created_at),
        "archived": sweep.archived_at is not None,
    }
