"""The embedded mode: with no broker, the CLI process runs the job through the worker's own code.

The job runs in a thread; the main thread shows progress by reading the database, exactly as it
does for a cluster run. Ctrl-C requests a cancel, which the job honours at its next chunk.
"""

from __future__ import annotations

import threading

from api_cli.output import stderr
from api_cli.progress import wait_for_run
from api_cli.state import AppState
from storage.records import RunRecord, RunStatus


def run_in_process(state: AppState, run_id: int, *, show_progress: bool) -> RunRecord:
    """Execute job ``run_id`` here and return its final record."""
    from worker.jobs import JobContext, execute_job

    repository = state.repository
    context = JobContext.for_this_process(repository, state.settings, "embedded")
    failures: list[BaseException] = []

    def work() -> None:
        try:
            execute_job(context, run_id)
        except BaseException as exc:  # reported by the main thread, recorded on the run
            failures.append(exc)
            _record_crash(state, run_id, exc)

    thread = threading.Thread(target=work, name=f"trainq-run-{run_id}", daemon=True)
    thread.start()
    try:
        wait_for_run(
            repository, run_id, show_progress=show_progress, abandon=lambda: not thread.is_alive()
        )
    except KeyboardInterrupt:
        stderr.print(f"[yellow]interrupted: cancelling run {run_id} at its next chunk…[/]")
        repository.request_cancel(run_id)
        thread.join()
        raise
    thread.join()
    if failures:
        raise failures[0]
    return repository.get_run(run_id)


def _record_crash(state: AppState, run_id: int, exc: BaseException) -> None:
    """Nothing else will requeue an embedded run: record why it stopped."""
    run = state.repository.get_run(run_id)
    if run.status is RunStatus.RUNNING:
        state.repository.finish_run(
            run_id,
            run.attempt,
            RunStatus.FAILED,
            error=f"internal error: {type(exc).__name__}: {exc}",
        )
