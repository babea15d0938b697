"""Following a sweep: its trials running in this process (embedded), or on workers.

Embedded, ``Client.run_sweep`` runs the trials in a thread while the main thread waits and can be
interrupted. Ctrl-C keeps the work, as it does for ``trainq train`` (``api_cli/embedded.py``):

- the first asks the trials in progress (a pack's, or one) to stop at their next chunk with a
  checkpoint there and go back to QUEUED, and no further trial starts; the sweep stays RUNNING
  and ``trainq sweep resume ID`` continues it (exit 130);
- a second hands them back at once (they resume from their newest checkpoints).

``trainq sweep cancel ID`` is the way to cancel a sweep.

Embedded or on workers, what is shown is read from the database by the main thread
(:class:`SweepLines`): a line per trial as it ends, so that the trials a pack prunes at a rung
show then, not when the whole pack is done, and a line on how the sweep stands after every
:data:`STANDING_EVERY_S` without one, so that a pack training for minutes is never silent.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from api_cli.exit_codes import ExitCode
from api_cli.output import literal, say, stderr
from api_cli.progress_line import clock
from api_cli.state import STATE
from storage.errors import StaleAttemptError, StorageError

if TYPE_CHECKING:
    from storage.records import RunRecord
    from storage.sweep_records import SweepRecord

#: How often the main thread looks at the sweep (and can take a Ctrl-C).
POLL_INTERVAL_S = 0.5
#: Without a trial ending, a line on how the sweep stands at least this often.
STANDING_EVERY_S = 10.0


def print_trial(run: RunRecord) -> None:
    """One line on stderr per trial that ended."""
    summary = run.train_summary
    outcome = "pruned" if summary is not None and summary.pruned else run.status.value
    stderr.print(f"trial {run.trial} (run {run.id}): {outcome} after {run.steps_done} steps")


class SweepLines:
    """What a followed sweep prints on stderr, read from the database at each :meth:`poll`."""

    def __init__(self, sweep_id: int, now: Callable[[], float] = time.monotonic) -> None:
        self._sweep_id = sweep_id
        self._now = now
        self._started = self._last_line = now()
        self._printed: set[int] = set()
        self._planned = len(STATE.repository.list_sweep_trials(sweep_id))

    def poll(self) -> None:
        """A line per trial that ended since the last poll (in trial order); without any, and
        :data:`STANDING_EVERY_S` after the last line, one on how the sweep stands."""
        from storage.records import RunStatus

        runs = STATE.repository.list_runs(sweep_id=self._sweep_id)
        ended = [run for run in runs if run.status.terminal and run.id not in self._printed]
        for run in sorted(ended, key=lambda r: r.trial or 0):
            self._printed.add(run.id)
            print_trial(run)
        now = self._now()
        if ended:
            self._last_line = now
        elif now - self._last_line >= STANDING_EVERY_S:
            line = standing_line(
                self._sweep_id,
                ended=sum(run.status.terminal for run in runs),
                planned=self._planned,
                training=sum(run.status is RunStatus.RUNNING for run in runs),
                steps=sum(run.steps_done for run in runs),
                elapsed_s=now - self._started,
            )
            say(line)
            self._last_line = now


def standing_line(
    sweep_id: int, *, ended: int, planned: int, training: int, steps: int, elapsed_s: float
) -> str:
    """``sweep 2: 10 of 30 trials ended, 20 training, 84,000 steps trained, elapsed 0:20``."""
    return (
        f"sweep {sweep_id}: {ended} of {planned} trials ended, {training} training, "
        f"{steps:,} steps trained, elapsed {clock(elapsed_s)}"
    )


def run_sweep_in_process(sweep_id: int, *, quiet: bool) -> SweepRecord:
    """Run the sweep's remaining trials here until it ends; Ctrl-C leaves it resumable.

    Raises:
        typer.Exit: with ``ExitCode.INTERRUPTED`` after Ctrl-C.
    """
    stop, done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            STATE.client.run_sweep(sweep_id, stop_requested=stop.is_set)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    lines = None if quiet else SweepLines(sweep_id)
    thread = threading.Thread(target=work, name=f"trainq-sweep-{sweep_id}", daemon=True)
    thread.start()
    try:
        # An Event, not Thread.join: on Python 3.11 a join interrupted by Ctrl-C can leave the
        # thread looking finished, and a second join then returns at once.
        while not done.wait(POLL_INTERVAL_S):
            if lines is not None:
                lines.poll()
    except KeyboardInterrupt:
        _stop_at_next_chunk(sweep_id, stop, done)
    if failures:
        raise failures[0]
    if lines is not None:
        lines.poll()  # the trials that ended since the last look
    sweep = STATE.repository.get_sweep(sweep_id)
    if stop.is_set() and not sweep.status.terminal:
        _say_interrupted(sweep_id)
    return sweep


def _stop_at_next_chunk(sweep_id: int, stop: threading.Event, done: threading.Event) -> None:
    """First Ctrl-C: the trials in progress stop at their next chunk; a second one: at once."""
    stop.set()
    try:  # a second Ctrl-C may come at any moment from here on
        say(
            f"[yellow]interrupted: sweep {sweep_id}'s trials in progress stop at their next chunk "
            "and keep a checkpoint there (Ctrl-C again to stop at once)…[/]"
        )
        done.wait()
    except KeyboardInterrupt:
        _hand_back_now(sweep_id)
        _say_interrupted(sweep_id, hard=True)
        # The trial's thread may be inside a TensorFlow call that would hold up interpreter
        # shutdown; its run is already handed back, so leave without waiting for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(ExitCode.INTERRUPTED)


def _hand_back_now(sweep_id: int) -> None:
    """Hand back the trials this process holds; the trial thread's later writes are fenced off."""
    from storage.records import RunStatus
    from worker.inprocess import release_if_ours
    from worker.jobs import JobContext

    repository = STATE.repository
    owner = JobContext.for_this_process(repository, STATE.settings, "embedded").owner
    for run in repository.list_runs(sweep_id=sweep_id, statuses=[RunStatus.RUNNING]):
        try:
            release_if_ours(repository, owner, run.id)
        except (StaleAttemptError, StorageError) as error:
            stderr.print(
                f"[red]could not hand run {run.id} back:[/] {literal(error)}", highlight=False
            )


def _say_interrupted(sweep_id: int, *, hard: bool = False) -> None:
    """Say how to continue; exit with ``INTERRUPTED`` (unless the caller exits itself)."""
    how = "at once, from their newest checkpoints" if hard else "from where they stopped"
    say(
        f"[yellow]sweep {sweep_id} interrupted (the trials in progress resume {how}); "
        f"continue with `trainq sweep resume {sweep_id}`[/]"
    )
    if not hard:
        raise typer.Exit(ExitCode.INTERRUPTED)


def wait_for_sweep(sweep_id: int, *, quiet: bool) -> SweepRecord:
    """Follow a sweep that workers run (:class:`SweepLines`) until it ends."""
    lines = None if quiet else SweepLines(sweep_id)
    while True:
        sweep = STATE.repository.get_sweep(sweep_id)
        if lines is not None:
            lines.poll()
        if sweep.status.terminal:
            return sweep
        time.sleep(POLL_INTERVAL_S)
