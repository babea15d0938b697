"""Following a job that runs in this process (embedded mode: no broker).

The job itself runs in the in-process dispatcher's thread (``worker/inprocess.py``, through the
worker's own ``execute_job``); the main thread shows progress by reading the database, exactly
as it does for a cluster run. Ctrl-C requests a cancel, which the job honours at its next chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from api_cli.output import stderr
from api_cli.progress import wait_for_run
from api_cli.state import AppState

if TYPE_CHECKING:
    from storage.records import RunRecord
    from worker.dispatch import JobHandle


def run_in_process(state: AppState, handle: JobHandle, *, show_progress: bool) -> RunRecord:
    """Watch job ``handle.run_id`` execute here and return its final record."""
    repository = state.repository
    run_id = handle.run_id
    try:
        wait_for_run(repository, run_id, show_progress=show_progress, abandon=handle.finished)
    except KeyboardInterrupt:
        stderr.print(f"[yellow]interrupted: cancelling run {run_id} at its next chunk…[/]")
        repository.request_cancel(run_id)
        handle.join()
        raise
    handle.join()
    handle.raise_failure()
    return repository.get_run(run_id)
