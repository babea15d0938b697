"""Waiting for jobs with live progress read from the database (never from the broker).

Progress goes to stderr, so ``--json`` output on stdout stays clean. On a terminal it is one live
line fitted to the terminal's width (``progress_line``); otherwise (CI logs, ``2> file``) it is a
plain line every 10 % or every 10 s, and one at each change of status.

An embedded ``trainq train`` imports TensorFlow in a thread with file descriptor 2 captured
(``worker.tensorflow_import``), while the main thread starts showing progress: asked then,
stderr is a temporary file, not the terminal, and what is written to it is thrown away. So
``trainq train`` calls :func:`keep_terminal` before that import starts, and progress is drawn on
a copy of the terminal's descriptor taken then (:func:`progress_console`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from api_cli.output import VisibleConsole, stderr
from api_cli.progress_line import Snapshot, plain_line, progress_line

if TYPE_CHECKING:
    from storage import Repository
    from storage.records import JobRecord, RunRecord
    from worker.dispatch import JobHandle

POLL_INTERVAL_S = 0.1
#: A run in this process that has no steps yet is importing TensorFlow and loading its data: each
#: read of the database then competes with that import for the interpreter (one core's worth of
#: Python between the threads), so it is read less often; its end is told at once (``wake``).
STARTING_POLL_INTERVAL_S = 0.5
#: Without a terminal, a progress line at least this often, and at every tenth of the steps.
PLAIN_EVERY_S = 10.0
PLAIN_LINES_PER_RUN = 10
#: Columns the live line leaves free at the right: a line that filled the terminal left the
#: cursor past its last column, where the terminal's echo of Ctrl-C ("^C") wrapped to a new line
#: and the final redraw printed the line a second time below the first.
ECHO_ROOM = 2

#: Says why a queued run waits (its place in the queue, or that no worker takes it), or None.
QueueNote = Callable[["RunRecord"], "str | None"]


def wait_for_run(
    repository: Repository,
    run_id: int,
    *,
    show_progress: bool,
    abandon: Callable[[], bool] = lambda: False,
    timeout_s: float | None = None,
    queue_note: QueueNote | None = None,
    wake: threading.Event | None = None,
) -> RunRecord:
    """Poll run ``run_id`` until it is terminal, ``abandon()`` says stop, or ``timeout_s`` passed.

    ``wake``: for a job running in this process, an event it sets when it stops; the poll then
    follows at once instead of after the interval, and before its first steps the run is read
    every :data:`STARTING_POLL_INTERVAL_S` only.

    Returns:
        The run as last read: terminal unless abandoned or timed out.
    """
    from api_cli.run_watch import RunWatch

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    watch = RunWatch(repository, run_id, queue_note)
    with _reporter(show_progress) as report:
        while True:
            snapshot = watch.poll()
            report(snapshot)
            if snapshot.final or abandon():
                return watch.run
            if deadline is not None and time.monotonic() >= deadline:
                return watch.run
            if wake is None:
                time.sleep(POLL_INTERVAL_S)
            else:
                wake.wait(POLL_INTERVAL_S if snapshot.steps_done else STARTING_POLL_INTERVAL_S)


def wait_for_jobs(
    repository: Repository, handles: Sequence[JobHandle], *, show_progress: bool
) -> list[JobRecord]:
    """Poll several jobs (e.g. a batch evaluation) until all are terminal (or, run in this
    process, have stopped)."""
    started = time.monotonic()
    with _reporter(show_progress) as report:
        while True:
            jobs = [repository.get_job(handle.run_id, handle.kind) for handle in handles]
            done = sum(
                job.status.terminal or handle.finished()
                for job, handle in zip(jobs, handles, strict=True)
            )
            report(
                Snapshot(
                    label="evaluations",
                    status="done" if done == len(jobs) else "running",
                    steps_done=done,
                    steps_total=len(jobs),
                    elapsed_s=time.monotonic() - started,
                    unit="jobs",
                    final=done == len(jobs),
                )
            )
            if done == len(jobs):
                return jobs
            time.sleep(POLL_INTERVAL_S * 3)


Report = Callable[[Snapshot], None]


class _KeptTerminal(VisibleConsole):
    """A console on a copy of stderr's terminal descriptor, at that terminal's current width."""

    def __init__(self, descriptor: int) -> None:
        stream = os.fdopen(descriptor, "w", encoding="utf-8", errors="replace", buffering=1)
        super().__init__(file=stream, force_terminal=True, soft_wrap=True, emoji=False)
        self._descriptor = descriptor

    def fit_width(self) -> None:
        """Take the terminal's width now (it may have been resized); stdin, stdout and stderr,
        where Rich looks, may all be pipes or captured."""
        with contextlib.suppress(OSError):  # no longer a terminal: keep the last width
            self.width = os.get_terminal_size(self._descriptor).columns


@functools.cache
def keep_terminal() -> VisibleConsole | None:
    """Keep a copy of stderr's descriptor when it is a terminal (once per process): call it
    before anything captures file descriptor 2, such as ``worker.training.start_importing``.

    Returns:
        The console progress is drawn on, or None when stderr is not a terminal.
    """
    if not stderr.is_terminal:
        return None
    try:
        return _KeptTerminal(os.dup(sys.stderr.fileno()))
    except (OSError, ValueError):  # no descriptor behind sys.stderr (a test runner's stream)
        return None


def progress_console() -> VisibleConsole:
    """Where progress and messages about a job being followed go: the terminal kept by
    :func:`keep_terminal` if it was called, else stderr."""
    if keep_terminal.cache_info().currsize:
        kept = keep_terminal()
        if kept is not None:
            return kept
    return stderr


def _reporter(show: bool) -> AbstractContextManager[Report]:
    if not show:
        return _Silent()
    console = progress_console()
    if console.is_terminal:
        return _LiveLine(console)
    return _PlainLines()


class _Silent(AbstractContextManager[Report]):
    def __enter__(self) -> Report:
        return lambda snapshot: None

    def __exit__(self, *exc: object) -> None:
        return None


class _LiveLine(AbstractContextManager[Report]):
    """One line on the terminal, redrawn at each poll, fitted to the width of the moment."""

    def __init__(self, console: VisibleConsole) -> None:
        from rich.live import Live  # only when a bar is shown: `trainq --help` stays light

        self._console = console
        self._live = Live("", console=console, auto_refresh=False, transient=False)

    def __enter__(self) -> Report:
        self._live.__enter__()
        return self._show

    def _show(self, snapshot: Snapshot) -> None:
        from rich.text import Text

        if isinstance(self._console, _KeptTerminal):
            self._console.fit_width()
        line = progress_line(snapshot, max(1, self._console.width - ECHO_ROOM))
        self._live.update(Text(line, no_wrap=True, overflow="crop"), refresh=True)

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)


class _PlainLines(AbstractContextManager[Report]):
    """For logs: a line at each status change, every 10 % of the steps, and every 10 s."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: tuple[str, int, float] | None = None  # (state, tenth, time) of the last line

    def __enter__(self) -> Report:
        return self.show

    def show(self, snapshot: Snapshot) -> None:
        """Print ``snapshot`` when it is news: a new state, a new tenth, or 10 s of silence."""
        now = self._clock()
        state = snapshot.status if snapshot.steps_done or snapshot.final else snapshot.phase_key
        tenth = _tenth(snapshot)
        last = self._last
        due = (
            last is None
            or state != last[0]
            or tenth > last[1]
            or now - last[2] >= PLAIN_EVERY_S
            or snapshot.final
        )
        if due:
            stderr.print(plain_line(snapshot), highlight=False, markup=False, soft_wrap=True)
            self._last = (state, tenth, now)

    def __exit__(self, *exc: object) -> None:
        return None


def _tenth(snapshot: Snapshot) -> int:
    if not snapshot.steps_total:
        return 0
    return snapshot.steps_done * PLAIN_LINES_PER_RUN // snapshot.steps_total  # exact, no float
