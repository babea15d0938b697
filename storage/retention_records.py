"""What checkpoint retention (``trainq gc``) keeps, and what it freed: plain objects, no SQLAlchemy,
so the CLI can build its options without importing the database layer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CheckpointKeep(StrEnum):
    """Which checkpoints of a finished run ``trainq gc`` keeps.

    Every choice keeps the newest checkpoint (a succeeded run's final weights, a pruned trial's
    rung weights, where a failed or cancelled run stopped) and any checkpoint an evaluation job
    still queued or running needs.
    """

    LAST = "last"  # the newest only
    BEST = "best"  # the newest and the one with the best validation accuracy
    ALL = "all"  # every one: nothing is removed


@dataclass(frozen=True)
class CheckpointThinning:
    """One run's checkpoints after (or, for a dry run, as they would be after) thinning."""

    run_id: int
    kept_steps: tuple[int, ...]  # ascending
    removed_steps: tuple[int, ...]  # ascending; on a dry run, what would be removed
    freed_bytes: int  # the removed weight blobs' sizes, added up

    @property
    def removed(self) -> int:
        """How many checkpoints were (or would be) removed."""
        return len(self.removed_steps)


@dataclass(frozen=True)
class RetentionReport:
    """What one ``trainq gc`` (``Client.gc``) did, or would do with ``dry_run``."""

    keep: CheckpointKeep
    dry_run: bool
    runs: tuple[CheckpointThinning, ...]  # every finished run looked at, by id
    vacuumed: bool = False  # whether the database was compacted afterwards (``--vacuum``)
    reclaimed_bytes: int | None = None  # what SQLite's file shrank by; None on PostgreSQL

    @property
    def removed(self) -> int:
        """How many checkpoints were (or would be) removed, over all runs."""
        return sum(run.removed for run in self.runs)

    @property
    def freed_bytes(self) -> int:
        """The weight bytes that were (or would be) removed, over all runs."""
        return sum(run.freed_bytes for run in self.runs)
