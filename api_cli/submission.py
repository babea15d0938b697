"""What happens after a job is dispatched, in one place for train, eval and resume.

``--wait``/``--no-wait`` and ``--json`` act here, and so does the final report; the commands do
not know whether the job runs in this process or on a worker (the dispatcher's handle does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.exit_codes import ExitCode
from api_cli.output import literal, print_json, stderr, stdout
from api_cli.progress import progress_console, wait_for_jobs
from api_cli.state import STATE
from api_cli.views import run_dict, summary_sentence
from api_cli.waiting import TimeoutOption, check_timeout
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage.records import JobRecord, RunRecord
    from worker.dispatch import JobHandle


#: ``--wait/--no-wait`` of every command that dispatches jobs (train, eval, resume).
WaitOption = Annotated[
    bool | None,
    typer.Option(
        "--wait/--no-wait",
        help="Watch the job(s) to the end (default: wait when embedded, only queue on a cluster).",
    ),
]
#: ``--json`` of every command that dispatches jobs.
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]

__all__ = ["JsonOption", "TimeoutOption", "WaitOption", "follow_run", "report_run"]


def refuse_no_wait_in_process(wait: bool | None, timeout_s: float | None = None) -> None:
    """``--no-wait`` and ``--timeout`` are meaningless when the job runs in this process: say so
    before anything is stored."""
    check_timeout(STATE.settings, timeout_s)
    if wait is False and STATE.client.dispatcher.in_this_process:
        raise InvalidConfigError(
            "--no-wait needs a broker: in embedded mode the job runs in this process. "
            "Set TRAINQ_BROKER_URL to queue it for workers."
        )


def where(handle: JobHandle, run: RunRecord) -> str:
    """Where a dispatched job runs, for people: ``in this process (embedded)`` or its queue."""
    return (
        "in this process (embedded)"
        if handle.in_this_process
        else f"on queue {literal(repr(run.queue))}"
    )


def started_verb(handles: Sequence[JobHandle], here: str) -> str:
    """What became of dispatched jobs, for people: ``here`` (e.g. ``evaluating``) when they run
    in this process, ``queued`` when workers will take them."""
    return here if all(handle.in_this_process for handle in handles) else "queued"


def show_progress(json_output: bool) -> bool:
    """A progress bar on stderr unless JSON was asked for and stderr is a pipe."""
    return not json_output or progress_console().is_terminal


@contextlib.contextmanager
def keeping_work_if_output_closes(handle: JobHandle) -> Iterator[None]:
    """Around everything printed once ``handle`` is dispatched: when the reader of our output
    goes away (``| head -1``), the job's work is kept as Ctrl-C keeps it
    (``api_cli.embedded.output_closed``, exit 141) instead of the process dying with it."""
    try:
        yield
    except BrokenPipeError:
        from api_cli.embedded import output_closed

        output_closed(STATE, handle)


def follow_run(
    handle: JobHandle,
    *,
    wait: bool | None,
    json_output: bool,
    timeout_s: float | None = None,
) -> None:
    """Watch a dispatched run (always when it runs here; with ``--wait`` or ``--timeout``
    otherwise) and report."""
    if handle.in_this_process or wait or timeout_s is not None:
        run = watch_run(
            handle, show=show_progress(json_output), timeout_s=timeout_s, json_output=json_output
        )
    else:
        run = STATE.repository.get_run(handle.run_id)
    report_run(run, json_output=json_output)


def watch_run(
    handle: JobHandle, *, show: bool, timeout_s: float | None = None, json_output: bool = False
) -> RunRecord:
    """Wait for one job with a live progress bar; Ctrl-C says what becomes of the job, and
    ``timeout_s`` ends a cluster wait with exit 75 (the run goes on)."""
    if handle.in_this_process:
        from api_cli.embedded import run_in_process

        return run_in_process(STATE, handle, show_progress=show)
    from api_cli import waiting

    return waiting.follow_run(
        STATE.repository,
        handle.run_id,
        settings=STATE.settings,
        show_progress=show,
        timeout_s=timeout_s,
        json_output=json_output,
    )


def follow_jobs(handles: Sequence[JobHandle], *, wait: bool | None) -> list[JobRecord] | None:
    """Wait for several jobs (e.g. evaluations) with a progress line on stderr; None when they
    were only queued for workers (no ``--wait``)."""
    in_process = all(handle.in_this_process for handle in handles)
    if not (in_process or wait):
        return None
    try:
        finished = wait_for_jobs(STATE.repository, handles, show_progress=stderr.is_terminal)
    except KeyboardInterrupt:
        if in_process:
            _give_up_in_process(handles)
        raise
    for handle in handles:
        handle.raise_failure()  # an in-process job that crashed outside the job code
    return finished


def _give_up_in_process(handles: Sequence[JobHandle]) -> None:
    """Ctrl-C during embedded evaluations: cancel those that did not finish (nothing else would
    ever run them; evaluating again is cheap)."""
    from storage.errors import InvalidStateError, StaleAttemptError, StorageError
    from worker.inprocess import InProcessJob, release_if_ours

    for handle in handles:
        if isinstance(handle, InProcessJob) and not handle.finished():
            handle.hand_back.set()
            with contextlib.suppress(InvalidStateError, StaleAttemptError, StorageError):
                release_if_ours(STATE.repository, handle.owner, handle.run_id, handle.kind)
                STATE.repository.cancel_job(handle.run_id, kind=handle.kind)


def report_run(run: RunRecord, *, json_output: bool) -> None:
    """Print a run's outcome and exit with the code its status implies."""
    from storage.records import RunStatus

    if json_output:
        print_json(run_dict(run))
    elif run.status is RunStatus.SUCCEEDED:
        stdout.print(summary_sentence(run), highlight=False)
    elif run.status is RunStatus.FAILED:  # wrapped at words on a terminal, one line in a log
        stderr.print(
            f"run {run.id} [red]failed[/]: {literal(run.error)}", soft_wrap=not stderr.is_terminal
        )
    elif run.status is RunStatus.CANCELLED:
        stderr.print(f"run {run.id} [yellow]cancelled[/] after {run.steps_done} steps")
    else:
        stdout.print(f"run {run.id} is {run.status}; follow it with `trainq runs watch {run.id}`")
    if run.status is RunStatus.FAILED:
        raise typer.Exit(ExitCode.RUN_FAILED)
    if run.status is RunStatus.CANCELLED:
        raise typer.Exit(ExitCode.RUN_CANCELLED)
