"""Following a job that runs in this process (embedded mode: no broker).

The job itself runs in the in-process dispatcher's thread (``worker/inprocess.py``, through the
worker's own ``execute_job``); the main thread shows progress by reading the database, exactly as
it does for a cluster run.

Interruptions keep the work (`trainq cancel` is the way to cancel):

- Ctrl-C asks the job to stop at its next chunk, store a checkpoint there and hand the run back
  (QUEUED); `trainq resume RUN_ID` continues it. Exit code 130.
- A second Ctrl-C stops at once: the run is handed back without waiting for the chunk, so it
  resumes from its newest checkpoint (the job thread's later writes are fenced off).
- A closed output (``trainq train | head -1``: the pipe's reader is gone) does what Ctrl-C
  does: the run stops at its next chunk with a checkpoint there and is handed back for
  `trainq resume`; exit code 141, as a SIGPIPE would give (see :func:`output_closed`).
- A storage failure (disk full, database locked or gone) leaves the run resumable too; only
  deterministic failures of the job itself end it FAILED.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from typing import TYPE_CHECKING, NoReturn, cast

import typer

from api_cli.closed_output import closed_pipes_to_devnull
from api_cli.exit_codes import ExitCode
from api_cli.output import literal
from api_cli.progress import progress_console, wait_for_run
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
    job_log_to_stderr()
    try:
        wait_for_run(
            repository,
            job.run_id,
            show_progress=show_progress,
            abandon=job.finished,
            wake=job.done,
        )
    except KeyboardInterrupt:
        _stop_at_next_chunk(state, job)
    job.join()
    if isinstance(job.failure, StorageError):
        _explain_storage_failure(state, job.run_id, job.failure)
    job.raise_failure()
    run = repository.get_run(job.run_id)
    if job.hand_back.is_set() and not run.status.terminal:
        _say_interrupted(state, run)
    if not run.status.terminal:  # handed back by the job itself: its trainer process died, say
        _say_handed_back(run)
    return run


@functools.cache
def job_log_to_stderr() -> None:
    """Once per process: the job's warnings and errors on stderr, one message a line, as Python
    printed them with no logging set up, but for the records that say how the job ended
    (``worker.claimed_job.JOB_OUTCOME``): the command reports that itself, so a failed run's
    error was printed twice."""
    from worker.claimed_job import JOB_OUTCOME

    handler = _StderrNow(logging.WARNING)
    handler.addFilter(lambda record: not getattr(record, JOB_OUTCOME, False))
    logging.getLogger().addHandler(handler)


class _StderrNow(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record comes, as Python's last resort does."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging's own rule: a failed write never raises
            self.handleError(record)


def _stop_at_next_chunk(state: AppState, job: InProcessJob) -> None:
    """First Ctrl-C: hand the run back at its next chunk; a second one: hand it back now."""
    job.hand_back.set()
    try:  # a second Ctrl-C may come at any moment from here on
        _tell(
            f"[yellow]interrupted: run {job.run_id} stops at its next chunk and keeps a "
            "checkpoint there (Ctrl-C again to stop at once)…[/]"
        )
        job.join()
    except KeyboardInterrupt:
        _hand_back_now(state, job)


def _hand_back_now(state: AppState, job: InProcessJob) -> NoReturn:
    """Hand the run back without waiting for its chunk (it resumes from its newest checkpoint)
    and leave at once."""
    from worker.inprocess import release_if_ours

    try:
        from storage.records import RunRecord

        run = release_if_ours(state.repository, job.owner, job.run_id)
        assert isinstance(run, RunRecord)  # a training run: eval jobs never get here
        _say_interrupted(state, run, hard=True)
    except (StaleAttemptError, StorageError) as error:
        _tell(f"[red]could not hand run {job.run_id} back:[/] {literal(error)}")
    # The job thread may be inside a TensorFlow call that would hold up interpreter
    # shutdown; the run is already handed back, so leave without waiting for it.
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(ExitCode.INTERRUPTED)


def output_closed(state: AppState, handle: JobHandle) -> NoReturn:
    """Our output's reader went away (``| head -1``): keep the work as Ctrl-C does.

    A job still running here stops at its next chunk with a checkpoint there and its run is
    handed back, resumable with `trainq resume`; a cluster job goes on. Said on stderr if that is
    still open (``| head`` closes only stdout).

    Raises:
        typer.Exit: with ``ExitCode.OUTPUT_CLOSED``.
    """
    closed_pipes_to_devnull()  # what is still buffered, and everything printed from here on
    if handle.in_this_process and not handle.finished():
        job = cast("InProcessJob", handle)
        job.hand_back.set()
        try:
            job.join()
        except KeyboardInterrupt:
            _hand_back_now(state, job)
        run = state.repository.get_run(job.run_id)
        if not run.status.terminal:
            kept = (
                f"stopped at step {run.steps_done:,} and keeps a checkpoint there"
                if run.steps_done
                else "was handed back before its first step"
            )
            with contextlib.suppress(OSError):
                _tell(
                    f"[yellow]run {run.id} {kept}: its output was closed; continue it with "
                    f"`trainq resume {run.id}`[/]"
                )
    raise typer.Exit(ExitCode.OUTPUT_CLOSED)


def _tell(message: str) -> None:
    """A message about the job, wrapped at words on a terminal, one line in a log (``say``), on
    the terminal kept from before TensorFlow's import where there is one (``api_cli.progress``)."""
    console = progress_console()
    console.print(message, soft_wrap=not console.is_terminal, highlight=False)


def _say_interrupted(state: AppState, run: RunRecord, *, hard: bool = False) -> None:
    """Tell where the run stopped and how to continue; exit with ``INTERRUPTED``."""
    message = f"run {run.id} interrupted at step {run.steps_done:,}"
    if hard:
        checkpoints = state.repository.list_checkpoints(run.id)
        newest = checkpoints[-1].step if checkpoints else 0
        message += f" (it resumes from its checkpoint at step {newest:,})"
    _tell(f"[yellow]{message}; continue with `trainq resume {run.id}`[/]")
    if not hard:
        raise typer.Exit(ExitCode.INTERRUPTED)


def _say_handed_back(run: RunRecord) -> NoReturn:
    """The job handed its run back for a reason of its own (logged above it, e.g. the trainer
    process was killed): nothing else here will train it, so say how to continue."""
    _tell(
        f"[yellow]run {run.id} stopped at step {run.steps_done:,} before it finished; it keeps "
        f"its checkpoints — continue with `trainq resume {run.id}`[/]"
    )
    raise typer.Exit(ExitCode.TEMPFAIL)


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
    _tell(
        f"[yellow]run {run_id} stopped{steps}: {cause}; it keeps its checkpoints — continue "
        f"with `trainq resume {run_id}` once that is fixed[/]"
    )
