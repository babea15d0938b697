"""What people change about runs after the fact: name, note, tags, and archiving (with sweeps).

None of it touches a run's work (status, lease, attempts, metrics): a worker's fenced writes
update other columns, so renaming or tagging a running run is safe. Archiving is refused for a
QUEUED or RUNNING run: the listings that follow live work (``status``, queue estimates) would
lose sight of it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.errors import InvalidStateError, InvalidValueError, RunNotFoundError
from storage.models import Run, SweepRow
from storage.record_mapping import run_to_record, sweep_to_record
from storage.records import RunRecord, RunStatus
from storage.repository_base import RepositoryBase, load_run
from storage.sweep_records import SweepRecord, SweepStatus
from storage.trial_slots import load_sweep
from storage.validation import MAX_ID, check_id, check_name, check_note, check_tags

_ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


class RunAnnotations(RepositoryBase):
    """Rename, note, tag and archive runs; archive sweeps with their trials."""

    def rename_run(self, run_id: int, name: str | None) -> RunRecord:
        """Give a run a new name (``None`` or ``""``: no name).

        Raises:
            RunNotFoundError: no run has this id.
            InvalidValueError: the name is longer than ``MAX_NAME_CHARS`` or not a string.
        """
        name = check_name(name) or None
        return self._update_run(run_id, lambda row: setattr(row, "name", name))

    def set_run_note(self, run_id: int, note: str | None) -> RunRecord:
        """Replace a run's note (``None`` or ``""``: remove it).

        Raises:
            RunNotFoundError: no run has this id.
            InvalidValueError: the note is longer than ``MAX_NOTE_CHARS`` or not a string.
        """
        note = check_note(note) or None
        return self._update_run(run_id, lambda row: setattr(row, "note", note))

    def tag_run(self, run_id: int, tags: Mapping[str, str]) -> RunRecord:
        """Add tags to a run, replacing the values of keys it already has.

        Raises:
            RunNotFoundError: no run has this id.
            InvalidValueError: a key or value is malformed, or the run would hold more than
                ``MAX_TAGS`` tags (nothing was changed).
        """
        added = check_tags(tags)

        def tag(row: Run) -> None:
            merged = check_tags({**row.tags, **added})
            row.tags = merged  # a new dict: the ORM writes JSON columns only when reassigned

        return self._update_run(run_id, tag)

    def untag_run(self, run_id: int, keys: Collection[str]) -> RunRecord:
        """Remove tags from a run by key.

        Raises:
            RunNotFoundError: no run has this id.
            InvalidValueError: the run has no tag with one of these keys (naming it and the
                keys it has; nothing was changed).
        """
        wanted = list(keys)

        def untag(row: Run) -> None:
            missing = [key for key in wanted if key not in row.tags]
            if missing:
                has = ", ".join(sorted(row.tags)) or "none"
                raise InvalidValueError(
                    f"run {row.id} has no tag {', '.join(map(repr, missing))} (its tags: {has})"
                )
            row.tags = {key: value for key, value in row.tags.items() if key not in wanted}

        return self._update_run(run_id, untag)

    def archive_runs(self, run_ids: Sequence[int]) -> list[RunRecord]:
        """Archive runs: hidden from listings unless asked for; a run archived before keeps its
        time. All or nothing.

        Raises:
            RunNotFoundError: naming every id that matches no run (nothing was changed).
            InvalidStateError: a run is QUEUED or RUNNING (nothing was changed).
        """
        return self._mark_runs(run_ids, archive=True)

    def unarchive_runs(self, run_ids: Sequence[int]) -> list[RunRecord]:
        """Bring archived runs back into the listings (a run not archived stays as it is).

        Raises:
            RunNotFoundError: naming every id that matches no run (nothing was changed).
        """
        return self._mark_runs(run_ids, archive=False)

    def archive_sweep(self, sweep_id: int) -> SweepRecord:
        """Archive a sweep and every trial it started.

        Raises:
            SweepNotFoundError: no sweep has this id.
            InvalidStateError: the sweep still runs, or a trial is QUEUED or RUNNING.
        """
        return self._mark_sweep(sweep_id, archive=True)

    def unarchive_sweep(self, sweep_id: int) -> SweepRecord:
        """Bring a sweep and its trials back into the listings.

        Raises:
            SweepNotFoundError: no sweep has this id.
        """
        return self._mark_sweep(sweep_id, archive=False)

    def _update_run(self, run_id: int, change: Callable[[Run], None]) -> RunRecord:
        def work(session: Session) -> RunRecord:
            row = load_run(session, run_id, for_update=True)
            change(row)
            session.flush()
            return run_to_record(row)

        # Idempotent: setting the same name, note or tags twice leaves the same row.
        return self._db.run(work, idempotent=True)

    def _mark_runs(self, run_ids: Sequence[int], *, archive: bool) -> list[RunRecord]:
        ids = list(dict.fromkeys(check_id(run_id) for run_id in run_ids))

        def mark(session: Session) -> list[RunRecord]:
            rows = load_runs(session, ids)
            if archive:
                refuse_active(rows, "archive")
            now = self._server_now(session)
            for row in rows:
                if archive and row.archived_at is None:
                    row.archived_at = now
                elif not archive:
                    row.archived_at = None
            session.flush()
            return [run_to_record(row) for row in rows]

        return self._db.run(mark)

    def _mark_sweep(self, sweep_id: int, *, archive: bool) -> SweepRecord:
        def mark(session: Session) -> SweepRecord:
            sweep = load_sweep(session, sweep_id, for_update=True)  # the sweep row, then runs
            trials = list(
                session.scalars(
                    select(Run).where(Run.sweep_id == sweep_id).order_by(Run.id).with_for_update()
                )
            )
            if archive:
                refuse_running_sweep(sweep, "archive")
                refuse_active(trials, "archive")
            now: datetime | None = self._server_now(session) if archive else None
            if archive and sweep.archived_at is not None:
                now = sweep.archived_at  # archived before: keep its time
            sweep.archived_at = now
            session.execute(
                update(Run).where(Run.sweep_id == sweep_id).values(archived_at=now),
                execution_options={"synchronize_session": False},
            )
            return sweep_to_record(sweep)

        return self._db.run(mark)


def load_runs(session: Session, run_ids: Sequence[int], *, for_update: bool = True) -> list[Run]:
    """The ``runs`` rows of ``run_ids``, in that order, locked unless ``for_update`` is off.

    Raises:
        RunNotFoundError: naming every id that matches no run.
    """
    wanted = [run_id for run_id in run_ids if 1 <= run_id <= MAX_ID]
    statement = select(Run).where(Run.id.in_(wanted)).execution_options(populate_existing=True)
    if for_update:
        statement = statement.with_for_update()
    found = {row.id: row for row in session.scalars(statement)}
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise RunNotFoundError(
            f"no run{plural} with id{plural} {', '.join(map(str, missing))}; "
            "`trainq runs list --archived` and `trainq runs list` show the runs"
        )
    return [found[run_id] for run_id in run_ids]


def refuse_active(rows: Sequence[Run], verb: str) -> None:
    """Refuse to ``verb`` QUEUED or RUNNING runs, naming each and how to stop it.

    Raises:
        InvalidStateError: one of the runs is QUEUED or RUNNING.
    """
    active = [row for row in rows if row.status in _ACTIVE]
    if not active:
        return
    which = ", ".join(f"run {row.id} is {row.status}" for row in active)
    ids = " ".join(str(row.id) for row in active)
    it, has = ("it", "it has") if len(active) == 1 else ("them", "they have")
    raise InvalidStateError(
        f"{which}: cancel {it} first (`trainq cancel {ids}`), then {verb} {it} once {has} "
        f"ended; nothing was {verb}d"
    )


def refuse_running_sweep(sweep: SweepRow, verb: str) -> None:
    """Refuse to ``verb`` a sweep that still starts trials.

    Raises:
        InvalidStateError: the sweep's status is RUNNING.
    """
    if sweep.status == SweepStatus.RUNNING.value:
        raise InvalidStateError(
            f"sweep {sweep.id} is running: cancel it first (`trainq sweep cancel {sweep.id}`), "
            f"then {verb} it once its trials have ended; nothing was {verb}d"
        )
