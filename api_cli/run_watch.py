"""Turns successive reads of one run into progress snapshots: phase, steps, metrics, speed.

Before its first steps a run says what it is doing, inferred from what the database shows:
queued (with its place in the queue, or that no worker takes it) or starting (importing
TensorFlow, loading data, compiling the step). Once steps come,
the loss and accuracy are the mean of the newest steps, and the speed is measured over this
watch. When the run has finished, the line shows the run's own final numbers, exactly those of
the summary printed after it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from api_cli.live import latest_metrics
from api_cli.progress_line import Snapshot
from api_cli.views import config_items

if TYPE_CHECKING:
    from api_cli.progress import QueueNote
    from storage import Repository

#: Re-read a queued run's place in its queue at most this often (a few queries each time).
QUEUE_NOTE_EVERY_S = 2.0

STARTING = ("loading TensorFlow and the data, compiling the step", "starting")


class RunWatch:
    """Polls one run; ``poll()`` reads it again and returns what to show."""

    def __init__(
        self, repository: Repository, run_id: int, queue_note: QueueNote | None = None
    ) -> None:
        self._repository = repository
        self._queue_note = queue_note
        self.run = repository.get_run(run_id)
        total = config_items(self.run).get("steps")
        self._total = int(total) if isinstance(total, int) else None
        self._started = time.monotonic()
        self._first_seen: tuple[float, int] | None = None  # (time, steps) at the first steps
        self._metrics: tuple[int, tuple[float | None, float | None]] = (0, (None, None))
        self._note: tuple[float, str | None] = (-QUEUE_NOTE_EVERY_S, None)

    def poll(self) -> Snapshot:
        """Read the run again and describe it."""
        from storage.records import RunStatus

        run = self.run = self._repository.get_run(self.run.id)
        now = time.monotonic()
        if run.status is RunStatus.RUNNING and run.steps_done and self._first_seen is None:
            # Measured from the first steps seen: the live speed and the ETA leave out set-up.
            self._first_seen = (now, run.steps_done)
        base = Snapshot(
            label=f"run {run.id}",
            status=run.status.value,
            steps_done=run.steps_done,
            steps_total=self._total,
            elapsed_s=now - self._started,
        )
        if run.status.terminal:
            return self._final(base)
        if run.status is RunStatus.QUEUED:
            return self._queued(base, now)
        if run.steps_done == 0:
            return _replace(base, phase=STARTING[0], phase_short=STARTING[1])
        return self._running(base, now)

    def _queued(self, base: Snapshot, now: float) -> Snapshot:
        if self._queue_note is not None and now - self._note[0] >= QUEUE_NOTE_EVERY_S:
            self._note = (now, self._queue_note(self.run))
        note = self._note[1] or "waiting to start"
        # The short form changes only when the news does, so logs get no line per new estimate.
        short = "queued, no worker" if "no online worker" in note else "queued"
        return _replace(base, phase=note, phase_short=short)

    def _running(self, base: Snapshot, now: float) -> Snapshot:
        run = self.run
        if self._metrics[0] != run.steps_done:
            self._metrics = (run.steps_done, latest_metrics(self._repository, run))
        loss, accuracy = self._metrics[1]
        rate = None
        if self._first_seen is not None and now > self._first_seen[0]:
            seen_steps = run.steps_done - self._first_seen[1]
            rate = seen_steps / (now - self._first_seen[0]) if seen_steps > 0 else None
        eta = None
        if rate and self._total:
            eta = max(0, self._total - run.steps_done) / rate
        return _replace(base, loss=loss, accuracy=accuracy, steps_per_s=rate, eta_s=eta)

    def _final(self, base: Snapshot) -> Snapshot:
        summary = self.run.train_summary
        if summary is None:
            loss, accuracy = latest_metrics(self._repository, self.run)
            return _replace(base, loss=loss, accuracy=accuracy, final=True)
        return _replace(
            base,
            loss=summary.final_loss,
            accuracy=summary.final_accuracy,
            steps_per_s=summary.wall_steps_per_s,
            rate_label="steps/s wall",
            final=True,
        )


def _replace(snapshot: Snapshot, **changes: object) -> Snapshot:
    from dataclasses import replace

    return replace(snapshot, **changes)  # type: ignore[arg-type]
