"""Following a sweep: its trials running in this process (embedded), or on workers.

Embedded, ``Client.run_sweep`` runs the trials in a thread while the main thread waits and can be
interrupted. Ctrl-C keeps the work, as it does for ``trainq train`` (``api_cli/embedded.py``):

- the first asks the trial in progress to stop at its next chunk with a checkpoint there and go
  back to QUEUED, and no further trial starts; the sweep stays RUNNING and
  ``trainq sweep resume ID`` continues it (exit 130);
- a second hands the trial back at once (it resumes from its newest checkpoint).

``trainq sweep cancel ID`` is the way to cancel a sweep.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

import typer

from api_cli.exit_codes import ExitCode
from api_cli.output import literal, stderr
from api_cli.state import STATE
from storage.errors import StaleAttemptError, StorageError

if TYPE_CHECKING:
    from storage.records import RunRecord
    from storage.sweep_records import SweepRecord

#: How often the main thread looks at the sweep (and can take a Ctrl-C).
POLL_INTERVAL_S = 0.5


def print_trial(run: RunRecord) -> None:
    """One line on stderr per trial that ended."""
    summary = run.train_summary
    outcome = "pruned" if summary is not None and summary.pruned else run.status.value
    stderr.print(f"trial {run.trial} (run {run.id}): {outcome} after {run.steps_done} steps")


def run_sweep_in_process(sweep_id: int, *, quiet: bool) -> SweepRecord:
    """Run the sweep's remaining trials here until it ends; Ctrl-C leaves it resumable.

    Raises:
        typer.Exit: with ``ExitCode.INTERRUPTED`` after Ctrl-C.
    """
    stop, done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            STATE.client.run_sweep(
                sweep_id, on_trial_end=None if quiet else print_trial, stop_requested=stop.is_set
            )
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=work, name=f"trainq-sweep-{sweep_id}", daemon=True)
    thread.start()
    try:
        # An Event, not Thread.join: on Python 3.11 a join interrupted by Ctrl-C can leave the
        # thread looking finished, and a second join then returns at once.
        while not done.wait(POLL_INTERVAL_S):
            pass
    except KeyboardInterrupt:
        _stop_at_next_chunk(sweep_id, stop, done)
    if failures:
        raise failures[0]
    sweep = STATE.repository.get_sweep(sweep_id)
    if stop.is_set() and not sweep.status.terminal:
        _say_interrupted(sweep_id)
    return sweep


def _stop_at_next_chunk(sweep_id: int, stop: threading.Event, done: threading.Event) -> None:
    """First Ctrl-C: the trial in progress stops at its next chunk; a second one: at once."""
    stop.set()
    try:  # a second Ctrl-C may come at any moment from here on
        stderr.print(
            f"[yellow]interrupted: sweep {sweep_id}'s trial in progress stops at its next chunk "
            "and keeps a checkpoint there (Ctrl-C again to stop at once)…[/]"
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
    how = "at once, from its newest checkpoint" if hard else "at its checkpoint"
    stderr.print(
        f"[yellow]sweep {sweep_id} interrupted (the trial in progress resumes {how}); "
        f"continue with `trainq sweep resume {sweep_id}`[/]"
    )
    if not hard:
        raise typer.Exit(ExitCode.INTERRUPTED)


def wait_for_sweep(sweep_id: int, *, quiet: bool) -> SweepRecord:
    """Follow a sweep that workers run, one line per trial that ends, until it ends."""
    repository = STATE.repository
    seen: set[int] = set()
    while True:
        sweep = repository.get_sweep(sweep_id)
        for run in repository.list_runs(sweep_id=sweep_id):
            if run.status.terminal and run.id not in seen:
                seen.add(run.id)
                if not quiet:
                    print_trial(run)
        if sweep.status.terminal:
            return sweep
        time.sleep(POLL_INTERVAL_S)
