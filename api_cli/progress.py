"""Waiting for jobs with a live progress bar read from the database (never from the broker).

The bar goes to stderr, so ``--json`` output on stdout stays clean; it is hidden when stderr is
not a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from api_cli.output import stderr

if TYPE_CHECKING:
    from storage import Repository
    from storage.records import RunRecord

POLL_INTERVAL_S = 0.1


def wait_for_run(
    repository: Repository,
    run_id: int,
    *,
    show_progress: bool,
    abandon: Callable[[], bool] = lambda: False,
) -> RunRecord:
    """Poll run ``run_id`` until it is terminal (or ``abandon()`` says stop), showing progress.

    The bar shows the step, the latest loss and accuracy, and steps/s measured over this wait.
    """
    run = repository.get_run(run_id)
    total = int(run.config.get("steps", 0)) or None
    with _progress(show_progress) as progress:
        bar = progress.add_task(f"run {run_id}", total=total, loss="-", accuracy="-", rate="-")
        first_seen: tuple[float, int] | None = None
        while True:
            run = repository.get_run(run_id)
            now = time.monotonic()
            if first_seen is None and run.steps_done > 0:
                first_seen = (now, run.steps_done)
            loss, accuracy = _latest_metrics(repository, run)
            rate = "-"
            if first_seen is not None and now > first_seen[0]:
                rate = f"{(run.steps_done - first_seen[1]) / (now - first_seen[0]):,.0f}"
            progress.update(
                bar,
                completed=run.steps_done,
                description=f"run {run_id} {run.status}",
                loss=loss,
                accuracy=accuracy,
                rate=rate,
            )
            if run.status.terminal or abandon():
                return run
            time.sleep(POLL_INTERVAL_S)


def wait_for_jobs(
    repository: Repository, job_ids: Sequence[int], *, show_progress: bool
) -> list[RunRecord]:
    """Poll several jobs (e.g. a batch evaluation) until all are terminal."""
    with _progress(show_progress) as progress:
        bar = progress.add_task("evaluations", total=len(job_ids), loss="", accuracy="", rate="")
        while True:
            jobs = [repository.get_run(job_id) for job_id in job_ids]
            done = sum(job.status.terminal for job in jobs)
            progress.update(bar, completed=done)
            if done == len(jobs):
                return jobs
            time.sleep(POLL_INTERVAL_S * 3)


def _progress(show: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "loss {task.fields[loss]}  acc {task.fields[accuracy]}  {task.fields[rate]} steps/s"
        ),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=not show or not stderr.is_terminal,
    )


def _latest_metrics(repository: Repository, run: RunRecord) -> tuple[str, str]:
    """The newest step's loss and accuracy, formatted ("-" before the first chunk)."""
    if run.steps_done == 0:
        return "-", "-"
    rows = repository.read_metrics(run.id, first_step=run.steps_done, last_step=run.steps_done)
    if not rows:
        return "-", "-"
    return f"{rows[-1].loss:.4f}", f"{rows[-1].accuracy:.3f}"
