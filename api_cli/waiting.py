"""Waiting for a run from the command line: ``--timeout``, Ctrl-C, and queues nobody consumes.

Every command that waits for a run (``train --wait``, ``resume --wait``, ``runs watch``) calls
``follow_run``. It never waits in silence: while the run is queued the progress line says its
place in its queue and when it should start, or that no online worker consumes that queue
(asked once, in the background, over Celery's control channel). ``--timeout`` stops the wait with
exit code 75 (the run goes on), and Ctrl-C stops watching a cluster run without cancelling it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.exit_codes import ExitCode
from api_cli.output import literal, print_json, say
from api_cli.progress import QueueNote, wait_for_run
from storage.errors import TrainqError

if TYPE_CHECKING:
    from storage import Repository, Settings
    from storage.records import RunRecord

TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        metavar="SECONDS",
        help="Stop waiting after this many seconds with exit code 75; the run goes on.",
    ),
]


class StillRunningError(TrainqError):
    """Raised when ``--timeout`` ended a wait before the run finished (the run goes on)."""


def check_timeout(settings: Settings, timeout_s: float | None) -> None:
    """Refuse ``--timeout`` in embedded mode, where the run lives and dies with this command.

    Raises:
        InvalidConfigError: naming the option and what to do instead.
    """
    from worker.errors import InvalidConfigError

    if timeout_s is not None and settings.embedded:
        raise InvalidConfigError(
            "--timeout needs a cluster (TRAINQ_BROKER_URL): an embedded run runs in this "
            "process, so it cannot go on without it; Ctrl-C cancels it, use --steps to bound it"
        )


def follow_run(
    repository: Repository,
    run_id: int,
    *,
    settings: Settings,
    show_progress: bool,
    timeout_s: float | None = None,
    json_output: bool = False,
) -> RunRecord:
    """Watch run ``run_id`` (queued or running, in a cluster) until it ends; return it.

    Raises:
        StillRunningError: ``timeout_s`` passed first (with ``json_output``, the run's JSON is
            printed first, so scripts still get its state).
        typer.Exit: Ctrl-C, with exit code 130, after saying that the run goes on and how to
            attach again.
    """
    note = queue_note(repository, settings)
    try:
        run = wait_for_run(
            repository,
            run_id,
            show_progress=show_progress,
            timeout_s=timeout_s,
            queue_note=note,
        )
    except KeyboardInterrupt:
        say(
            f"[yellow]stopped watching: run {run_id} goes on without this terminal.[/] "
            f"Attach again with `trainq runs watch {run_id}`; stop it with "
            f"`trainq cancel {run_id}`."
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    if run.status.terminal:
        return run
    if json_output:
        from api_cli.views import run_dict

        print_json(run_dict(run))
    raise StillRunningError(
        f"run {run_id} is still {run.status} after --timeout {timeout_s:g} s; it goes on: "
        f"`trainq runs watch {run_id}` follows it, `trainq cancel {run_id}` stops it"
    )


def queue_note(repository: Repository, settings: Settings) -> QueueNote:
    """What to say while a run waits in its queue: its place, or that no worker consumes it.

    In a cluster, which workers consume which queue is asked once, in a background thread; until
    it answers, the note gives the place in the queue alone. In embedded mode nothing consumes a
    queue but the command that runs the job.
    """
    from api_cli.live import place_in_queue

    census = None
    if not settings.embedded:
        from worker.cluster.census import QueueCensus

        census = QueueCensus(settings)
    warned: set[str] = set()

    def note(run: RunRecord) -> str | None:
        if settings.embedded:
            return (
                "nothing runs it: an embedded run runs inside the `trainq train` that queued it; "
                f"`trainq resume {run.id}` runs it here"
            )
        consumers = census.result() if census is not None else None
        workers = None if consumers is None else len(consumers.get(run.queue, ()))
        if workers == 0 and run.queue not in warned:
            warned.add(run.queue)
            say(no_consumer_message(run.queue))
        return place_in_queue(repository, run, workers).describe()

    return note


def no_consumer_message(queue: str) -> str:
    """Says that nothing will take a run from ``queue``, and what to start."""
    from worker.queues import GPU_QUEUE

    start = "trainq worker --queues gpu --device gpu" if queue == GPU_QUEUE else "trainq worker"
    return (
        f"[yellow]warning:[/] no online worker consumes queue {literal(repr(queue))}: the run "
        f"waits until one starts (`{start}` on a machine that can run it)"
    )
