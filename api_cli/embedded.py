"""Following a job that runs in this process (embedded mode: no broker).

The job itself runs in the in-process dispatcher's thread (``worker/inprocess.py``, through the
worker's own ``execute_job``); the main thread shows progress by reading the database, exactly as
it does for a cluster run.

Interruptions keep the work (`trainq cancel` is the way to cancel):

- Ctrl-C asks the job to stop at its next chunk, store a checkpoint there and hand the run back
  (QUEUED); `trainq resume RUN_ID` continues it. Exit code 130.
- A second Ctrl-C stops at once: the run is handed back without waiting for the chunk, so it
  resumes from its newest checkpoint (the job thread's later writes are fenced off).
- A storage failure (disk full, database locked or gone) leaves the run resumable too; only
  deterministic failures of the job itself end it FAILED.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, cast

import typer

from api_cli.exit_codes import ExitCode
from api_cli.output import literal, stderr
from api_cli.progress import wait_for_run
from api_cli.state import AppState
from storage.errors import DiskFullError, StaleAttemptError, StorageError

if TYPE_CHECKING:
    from storage.records import RunRecord
    from worker.dispatch import JobHandle
    from worker.inprocess import InProcessJob


def run_in_process(state: AppState, handle: JobHandle, *, show_progress: bool) -> RunRecord:
    """Watch job ``handle.run_id`` execute here and return its final record.

    Raises:
        typer.Exit: with ``ExitCode.INTERRUPTED`` after Ctrl-C; the run is resumable.
        StorageError: the database failed under the job; the run is left resumable.
    """
    job = cast("InProcessJob", handle)
    repository = state.repository
    try:
        wait_for_run(repository, job.run_id, show_progress=show_progress, abandon=job.finished)
    except KeyboardInterrupt:
        _stop_at_next_chunk(state, job)
    job.join()
    if isinstance(job.failure, StorageError):
        _explain_storage_failure(state, job.run_id, job.failure)
    job.raise_failure()
    run = repository.get_run(job.run_id)
    if job.hand_back.is_set() and not run.status.terminal:
        _say_interrupted(state, run)
    return run


def _stop_at_next_chunk(state: AppState, job: InProcessJob) -> None:
    """First Ctrl-C: hand the run back at its next chunk; a second one: hand it back now."""
    from worker.inprocess import release_if_ours

    job.hand_back.set()
    try:  # a second Ctrl-C may come at any moment from here on
        stderr.print(
            f"[yellow]interrupted: run {job.run_id} stops at its next chunk and keeps a "
            "checkpoint there (Ctrl-C again to stop at once)…[/]"
        )
        job.join()
    except KeyboardInterrupt:
        try:
            from storage.records import RunRecord

            run = release_if_ours(state.repository, job.owner, job.run_id)
            assert isinstance(run, RunRecord)  # a training run: eval jobs never get here
            _say_interrupted(state, run, hard=True)
        except (StaleAttemptError, StorageError) as error:
            stderr.print(
                f"[red]could not hand run {job.run_id} back:[/] {literal(error)}", highlight=False
            )
        # The job thread may be inside a TensorFlow call that would hold up interpreter
        # shutdown; the run is already handed back, so leave without waiting for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(ExitCode.INTERRUPTED)


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
        where = f"TRAINQ_HOME={home}" if in_home else database
        cause = f"no space left on device at {literal(where)}"
    try:
        steps = f" at step {state.repository.get_run(run_id).steps_done:,}"
    except StorageError:
        steps = ""
    stderr.print(
        f"[yellow]run {run_id} stopped{steps}: {cause}; it keeps its checkpoints — continue "
        f"with `trainq resume {run_id}` once that is fixed[/]",
        highlight=False,
    )
