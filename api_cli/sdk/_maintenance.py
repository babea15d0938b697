"""The Python API's upkeep (a mixin of :class:`trainq.Client`): thinning old checkpoints.

``trainq gc`` calls the same method; it adds only output and the progress line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from api_cli.sdk import _arguments as check
from storage.errors import RunNotFoundError
from storage.retention_records import CheckpointKeep, CheckpointThinning, RetentionReport

if TYPE_CHECKING:
    from storage import Repository

#: Told of each run as it is done: (what it freed, runs done so far, runs in all).
RunDone = Callable[[CheckpointThinning, int, int], None]


class MaintenanceMethods:
    """Upkeep of the store through the client's repository."""

    if TYPE_CHECKING:  # provided by the client

        @property
        def repository(self) -> Repository: ...

    def gc(
        self,
        *,
        keep_checkpoints: CheckpointKeep | str = CheckpointKeep.LAST,
        older_than_s: float | None = None,
        dry_run: bool = False,
        vacuum: bool = False,
        on_run: RunDone | None = None,
    ) -> RetentionReport:
        """Thin the checkpoints of finished runs (``trainq gc``); queued and running runs, whose
        resume needs them, are never touched.

        Each run keeps its newest checkpoint (a succeeded run's final weights), every
        checkpoint an evaluation still queued or running will read and, with ``"best"``, the
        checkpoint of best validation accuracy. One run at a time, each in its own transaction.

        Args:
            keep_checkpoints: ``"last"``, ``"best"`` or ``"all"`` (nothing is removed).
            older_than_s: only runs that finished at least this many seconds ago.
            dry_run: report what would be removed; remove nothing.
            vacuum: afterwards give the space back to the file system (SQLite's ``VACUUM``,
                which rewrites the whole file; nothing to do on PostgreSQL, which reuses it).
                Ignored on a dry run.
            on_run: called after each run, e.g. to show progress.

        Returns:
            Every run that lost (or would lose) a checkpoint, and the totals.

        Raises:
            InvalidConfigError: a wrong argument; nothing was removed.
            DatabaseBusyError: ``vacuum`` waited too long for other processes to let go.
        """
        keep = check.choice(CheckpointKeep, keep_checkpoints, "keep_checkpoints")
        older_than_s = check.optional_seconds(older_than_s, "older_than_s")
        dry_run = check.flag(dry_run, "dry_run")
        vacuum = check.flag(vacuum, "vacuum")
        on_run = check.optional_callable(on_run, "on_run")
        repository = self.repository
        run_ids = (
            [] if keep is CheckpointKeep.ALL else repository.runs_to_thin(older_than_s=older_than_s)
        )
        thinned: list[CheckpointThinning] = []
        for done, run_id in enumerate(run_ids, start=1):
            try:
                thinning = repository.thin_checkpoints(run_id, keep=keep, dry_run=dry_run)
            except RunNotFoundError:  # deleted meanwhile (`trainq runs delete`)
                continue
            if thinning.removed:
                thinned.append(thinning)
            if on_run is not None:
                on_run(thinning, done, len(run_ids))
        report = RetentionReport(keep=keep, dry_run=dry_run, runs=tuple(thinned))
        if not vacuum or dry_run:
            return report
        reclaimed = repository.reclaim_space()
        return RetentionReport(
            keep=keep, dry_run=False, runs=report.runs, vacuumed=True, reclaimed_bytes=reclaimed
        )
