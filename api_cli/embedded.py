"""The embedded mode: with no broker, the CLI process runs the job through the worker's own code.

The job runs in a thread; the main thread shows progress by reading the database, exactly as it
does for a cluster run.

Interruptions keep the work (`trainq cancel` is the way to cancel):

- Ctrl-C asks the job to stop at its next chunk, store a checkpoint there and hand the run back
  (QUEUED); `trainq resume RUN_ID` continues it. Exit code 130.
- A second Ctrl-C stops at once: the run is handed back without waiting for the chunk, so it
  resumes from its newest checkpoint (the job thread's later writes are fenced off).
- A storage failure (disk full, database locked or gone) leaves the run resumable too; only
  deterministic failures of the job itself end it FAILED.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import TYPE_CHECKING

import typer

from api_cli.exit_codes import ExitCode
from api_cli.output import stderr
from api_cli.progress import wait_for_run
from api_cli.state import AppState
from storage.errors import DiskFullError, StaleAttemptError, StorageError
from storage.records import RunRecord, RunStatus

if TYPE_CHECKING:
    from worker.jobs import JobContext


def run_in_process(state: AppState, run_id: int, *, show_progress: bool) -> RunRecord:
    """Execute job ``run_id`` here and return its final record.

    Raises:
        typer.Exit: with ``ExitCode.INTERRUPTED`` after Ctrl-C; the run is resumable.
        StorageError: the database failed under the job; the run is left resumable.
    """
    from worker.jobs import JobContext, execute_job

    repository = state.repository
    context = JobContext.for_this_process(repository, state.settings, "embedded")
    failures: list[BaseException] = []

    def work() -> None:
        try:
            execute_job(context, run_id)
        except BaseException as exc:  # reported by the main thread, recorded on the run
            failures.append(exc)
            _record_crash(state, context, run_id, exc)

    thread = threading.Thread(target=work, name=f"trainq-run-{run_id}", daemon=True)
    thread.start()
    try:
        wait_for_run(
            repository, run_id, show_progress=show_progress, abandon=lambda: not thread.is_alive()
        )
    except KeyboardInterrupt:
        _stop_at_next_chunk(state, context, run_id, thread)
    thread.join()
    if failures:
        if isinstance(failures[0], StorageError):
            _explain_storage_failure(state, run_id, failures[0])
        raise failures[0]
    run = repository.get_run(run_id)
    if context.hand_back.is_set() and not run.status.terminal:
        _say_interrupted(state, run)
    return run


def _stop_at_next_chunk(
    state: AppState, context: JobContext, run_id: int, thread: threading.Thread
) -> None:
    """First Ctrl-C: hand the run back at its next chunk; a second one: hand it back now."""
    context.hand_back.set()
    try:  # a second Ctrl-C may come at any moment from here on
        stderr.print(
            f"[yellow]interrupted: run {run_id} stops at its next chunk and keeps a checkpoint "
            "there (Ctrl-C again to stop at once)…[/]"
        )
        thread.join()
    except KeyboardInterrupt:
        try:
            _say_interrupted(state, _release_if_ours(state, context, run_id), hard=True)
        except (StaleAttemptError, StorageError) as error:
            stderr.print(f"[red]could not hand run {run_id} back:[/] {error}", highlight=False)
        # The job thread may be inside a TensorFlow call that would hold up interpreter
        # shutdown; the run is already handed back, so leave without waiting for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(ExitCode.INTERRUPTED)


def _release_if_ours(state: AppState, context: JobContext, run_id: int) -> RunRecord:
    """Hand the run back if this process still holds it; its job thread's writes then fail.

    Raises:
        StaleAttemptError: another attempt took the run meanwhile.
        StorageError: the database cannot be written.
    """
    repository = state.repository
    run = repository.get_run(run_id)
    if run.status is not RunStatus.RUNNING or run.lease_owner != context.owner:
        return run  # finished, or already handed back by the job itself
    return repository.release_run(run_id, run.attempt)


def _say_interrupted(state: AppState, run: RunRecord, *, hard: bool = False) -> None:
    """Tell where the run stopped and how to continue; exit with ``INTERRUPTED``."""
    message = f"run {run.id} interrupted at step {run.steps_done:,}"
    if hard:
        checkpoints = state.repository.list_checkpoints(run.id)
        newest = checkpoints[-1].step if checkpoints else 0
        message += f" (it resumes from its checkpoint at step {newest:,})"
    stderr.print(f"[yellow]{message}; continue with `trainq resume {run.id}`[/]")
    if not hard:
        raise typer.Exit(ExitCode.INTERRUPTED)


def _explain_storage_failure(state: AppState, run_id: int, error: BaseException) -> None:
    """Say that the run survived the failure and how to continue it; the error itself follows."""
    from storage import Database

    cause = "the database failed"
    if isinstance(error, DiskFullError):
        home = state.settings.home_dir
        database = Database(state.settings.database_url).file_path
        in_home = database is None or database.parent == home
        cause = f"no space left on device at {f'TRAINQ_HOME={home}' if in_home else database}"
    try:
        steps = f" at step {state.repository.get_run(run_id).steps_done:,}"
    except StorageError:
        steps = ""
    stderr.print(
        f"[yellow]run {run_id} stopped{steps}: {cause}; it keeps its checkpoints — continue "
        f"with `trainq resume {run_id}` once that is fixed[/]",
        highlight=False,
    )


def _record_crash(state: AppState, context: JobContext, run_id: int, exc: BaseException) -> None:
    """Nothing else will requeue an embedded run: record why it stopped.

    A storage failure (disk full, database locked or unreachable) says nothing about the run:
    hand it back so that `trainq resume` continues it once the database is usable. If even that
    write fails, the run stays RUNNING under this process's lease, which `trainq resume` takes
    over as soon as this process is gone.
    """
    if isinstance(exc, StorageError):
        # If this fails too, see above: the lease of a gone process is taken over at once.
        with contextlib.suppress(StaleAttemptError, StorageError):
            _release_if_ours(state, context, run_id)
        return
    run = state.repository.get_run(run_id)
    if run.status is RunStatus.RUNNING:
        state.repository.finish_run(
            run_id,
            run.attempt,
            RunStatus.FAILED,
            error=f"internal error: {type(exc).__name__}: {exc}",
        )
