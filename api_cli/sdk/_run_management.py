"""The Python API's run management (a mixin of :class:`trainq.Client`): rename, note, tag,
archive and delete runs, and archive or delete a sweep with its trials.

``trainq runs rename|note|tag|untag|archive|unarchive|delete`` and ``trainq sweep
archive|unarchive|delete`` do the same through the same store operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

from api_cli.sdk import _arguments as check
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage import Repository
    from storage.records import RemovedRuns, RunRecord
    from storage.sweep_records import SweepRecord

T = TypeVar("T")
R = TypeVar("R")


class RunManagementMethods:
    """Change runs after the fact through the client's repository."""

    if TYPE_CHECKING:  # provided by the client

        @property
        def repository(self) -> Repository: ...

    def rename_run(self, run_id: int, name: str | None) -> RunRecord:
        """Give a run a new name (``None`` or ``""``: no name), checked as ``submit``'s.

        Raises:
            RunNotFoundError: no run has this id.
            InvalidConfigError: ``run_id`` or ``name`` is invalid (named).
        """
        return self.repository.rename_run(check.job_id(run_id), check.optional_name(name))

    def set_note(self, run_id: int, note: str | None) -> RunRecord:
        """Replace a run's note (``None`` or ``""``: remove it).

        Example:
            >>> client.set_note(7, "diverges after step 4000: try a smaller lr")

        Raises:
            RunNotFoundError: no run has this id.
            InvalidConfigError: ``run_id`` or ``note`` is invalid (too long, not a string).
        """
        from storage.validation import MAX_NOTE_CHARS

        run_id = check.job_id(run_id)
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
            raise check.refuse("note", f"a string of at most {MAX_NOTE_CHARS:,} characters", note)
        return self.repository.set_run_note(run_id, note)

    def tag_run(self, run_id: int, tags: Mapping[str, str]) -> RunRecord:
        """Add tags to a run, replacing the values of keys it has (checked as ``submit``'s).

        Raises:
            RunNotFoundError: no run has this id.
            InvalidConfigError: ``run_id`` or a tag is invalid, or the run would hold too many.
        """
        run_id = check.job_id(run_id)
        checked = check.optional_tags(tags)
        if checked is None:
            raise check.refuse("tags", 'a mapping of KEY to VALUE strings, e.g. {"a": "b"}', tags)
        return _checked("tags", lambda added: self.repository.tag_run(run_id, added), checked)

    def untag_run(self, run_id: int, keys: Iterable[str]) -> RunRecord:
        """Remove tags from a run by key.

        Raises:
            RunNotFoundError: no run has this id.
            InvalidConfigError: ``keys`` is not a list of strings, or names a tag the run
                does not have (nothing was removed).
        """
        run_id = check.job_id(run_id)
        if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
            raise check.refuse("keys", "a list of tag keys", keys)
        wanted = list(keys)
        if not all(isinstance(key, str) for key in wanted):
            raise check.refuse("keys", "a list of tag keys", keys)
        return _checked("keys", lambda k: self.repository.untag_run(run_id, k), wanted)

    def archive_runs(self, run_ids: Iterable[int]) -> list[RunRecord]:
        """Archive finished runs: :meth:`runs` leaves them out unless ``archived``.

        Raises:
            RunNotFoundError: naming every id that matches no run (nothing was archived).
            InvalidStateError: a run is queued or running (nothing was archived).
            InvalidConfigError: ``run_ids`` is not a list of ids.
        """
        return self.repository.archive_runs(check.job_ids(run_ids))

    def unarchive_runs(self, run_ids: Iterable[int]) -> list[RunRecord]:
        """Bring archived runs back into :meth:`runs`.

        Raises:
            RunNotFoundError: naming every id that matches no run.
            InvalidConfigError: ``run_ids`` is not a list of ids.
        """
        return self.repository.unarchive_runs(check.job_ids(run_ids))

    def delete_runs(self, run_ids: Iterable[int], *, dry_run: bool = False) -> RemovedRuns:
        """Delete finished runs for good: metrics, checkpoints, final weights, evaluations,
        attempts, all or nothing. A sweep's trials go with their sweep (:meth:`delete_sweep`).

        On PostgreSQL the space is reused; a SQLite file keeps its size until
        :meth:`reclaim_space`.

        Returns:
            What was removed (``freed_bytes``), or with ``dry_run`` what would be.

        Raises:
            RunNotFoundError: naming every id that matches no run (nothing was deleted).
            InvalidStateError: a run (or an evaluation job of one) is queued or running, or a
                run is a sweep's trial (nothing was deleted).
            InvalidConfigError: ``run_ids`` is not a list of ids.
        """
        ids = check.job_ids(run_ids)
        return self.repository.delete_runs(ids, dry_run=check.flag(dry_run, "dry_run"))

    def archive_sweep(self, sweep_id: int) -> SweepRecord:
        """Archive a finished sweep with every trial it ran.

        Raises:
            SweepNotFoundError: no sweep has this id.
            InvalidStateError: the sweep runs, or one of its trials is queued or running.
            InvalidConfigError: ``sweep_id`` is not an id.
        """
        return self.repository.archive_sweep(check.job_id(sweep_id, "sweep_id"))

    def unarchive_sweep(self, sweep_id: int) -> SweepRecord:
        """Bring an archived sweep and its trials back into the listings.

        Raises:
            SweepNotFoundError: no sweep has this id.
            InvalidConfigError: ``sweep_id`` is not an id.
        """
        return self.repository.unarchive_sweep(check.job_id(sweep_id, "sweep_id"))

    def delete_sweep(self, sweep_id: int, *, dry_run: bool = False) -> RemovedRuns:
        """Delete a finished sweep for good, with its planned trials and every run it started.

        Raises:
            SweepNotFoundError: no sweep has this id.
            InvalidStateError: the sweep runs, or a trial is queued or running.
            InvalidConfigError: ``sweep_id`` is not an id.
        """
        sweep_id = check.job_id(sweep_id, "sweep_id")
        return self.repository.delete_sweep(sweep_id, dry_run=check.flag(dry_run, "dry_run"))

    def reclaim_space(self) -> int | None:
        """SQLite: compact the file (``VACUUM``) after deletions; the bytes it shrank by.
        PostgreSQL reuses the space by itself: None, nothing done."""
        return self.repository.reclaim_space()


def _checked(argument: str, work: Callable[[T], R], value: T) -> R:
    """``work(value)``, a value error of the store's named after ``argument``."""
    from storage.errors import InvalidValueError

    try:
        return work(value)
    except InvalidValueError as exc:
        raise InvalidConfigError(f"{argument}: {exc}") from None
