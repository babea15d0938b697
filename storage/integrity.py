"""``trainq db check``: is the database file sound, and does every stored blob hold what it claims?

Three checks, each reported in the user's words:

- the file itself (SQLite only): ``PRAGMA integrity_check`` walks every page and index; a damaged
  page, random bytes written over the file, or a file that is not a database show up here.
  PostgreSQL checksums its own pages and has no equivalent trainq can run without extensions.
- every weight blob (checkpoints, final weights included): its SHA-256 and its structure, exactly
  as a resume, ``eval`` or ``export`` would read it; on SQLite also whether it is still stored
  as a BLOB (an SQL edit can leave TEXT, which trainq reads as bytes all the same);
- every metric chunk: loss and accuracy each hold 4 bytes per step (the blobs carry no checksum,
  so their size is what can be checked).

Blobs are streamed a few rows at a time, so checking a large database needs little memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import LargeBinary, cast, func, select, text
from sqlalchemy.orm import Session

from storage.database import Database
from storage.errors import (
    DatabaseCorruptError,
    DatabaseUnavailableError,
    SchemaOutdatedError,
    StorageError,
    WeightsChecksumError,
    WeightsCorruptError,
)
from storage.models import CheckpointRow, MetricChunkRow, Run
from storage.records import RunStatus
from storage.weights_codec import decode_weights

#: Bytes per stored step in each metric blob (float32).
_BYTES_PER_STEP = 4
#: SQLite's integrity_check stops after this many messages; more would not help anyone.
_MAX_FILE_MESSAGES = 20
#: Checkpoint rows fetched per round trip (each holds a blob of ~30-60 KiB).
_ROWS_PER_FETCH = 16


@dataclass(frozen=True)
class IntegrityProblem:
    """One thing found damaged."""

    what: str  # "file", "weights" or "metrics"
    detail: str  # what is wrong, in the user's words
    run_id: int | None = None
    step: int | None = None


@dataclass(frozen=True)
class IntegrityReport:
    """The outcome of :func:`check_database`."""

    database: str  # URL, password hidden
    file_check: str  # "ok", "damaged", or why it was not run
    weights_checked: int = 0
    metric_chunks_checked: int = 0
    problems: tuple[IntegrityProblem, ...] = field(default_factory=tuple)

    @property
    def healthy(self) -> bool:
        """True when nothing is damaged."""
        return not self.problems


def check_database(database: Database) -> IntegrityReport:
    """Check the file, every weight blob and every metric chunk of ``database``.

    Raises:
        DatabaseUnavailableError: the database cannot be reached, or the SQLite file does not
            exist (checking must not create one).
        SchemaOutdatedError: the database has no trainq schema.
    """
    path = database.file_path
    if path is not None and not path.is_file():
        raise DatabaseUnavailableError(f"there is no SQLite database at {path}; nothing to check")
    problems: list[IntegrityProblem] = []
    try:
        file_check = _check_file(database, path, problems)
    except DatabaseCorruptError as error:  # empty, or not a database at all
        detail = (
            f"the SQLite file {path} cannot be read ({error.detail}): it is not a database, or "
            "its first page is damaged. Restore it from a backup"
            if error.detail != str(error)
            else str(error)  # our own message (an empty file) says it all
        )
        problems.append(IntegrityProblem("file", detail))
        return IntegrityReport(database.url, "damaged", problems=tuple(problems))
    weights = _guarded(problems, "weights", lambda: _check_weights(database, problems))
    chunks = _guarded(problems, "metrics", lambda: _check_chunks(database, problems))
    return IntegrityReport(database.url, file_check, weights, chunks, tuple(problems))


def _guarded(problems: list[IntegrityProblem], what: str, check: Callable[[], int]) -> int:
    """Run one check; a table too damaged to read is a problem to report, not a crash."""
    try:
        return check()
    except (DatabaseUnavailableError, SchemaOutdatedError):
        raise  # not damage: the database is away, or has no trainq schema
    except StorageError as error:  # SQLite reports a damaged page (DatabaseCorruptError)
        detail = error.detail if isinstance(error, DatabaseCorruptError) else str(error)
        problems.append(
            IntegrityProblem(what, f"some stored {what} are in damaged pages ({detail})")
        )
        return 0


def _check_file(database: Database, path: Path | None, problems: list[IntegrityProblem]) -> str:
    """SQLite's own page-by-page check.

    Raises:
        DatabaseCorruptError: the file cannot be read at all (empty, or not a database).
    """
    if path is None:
        return "not applicable (PostgreSQL checks its own pages)"

    def integrity(session: Session) -> list[str]:
        statement = text(f"PRAGMA integrity_check({_MAX_FILE_MESSAGES})")
        return [str(row[0]) for row in session.execute(statement)]

    # Reading the schema fails at once for a file that is not a database: nothing else to check.
    database.run(lambda session: session.execute(text("SELECT count(*) FROM sqlite_master")))
    try:
        messages = database.run(integrity, readonly=True)
    except DatabaseCorruptError as error:  # SQLite gave up half-way: report it, check the rows
        messages = [f"SQLite stopped its check ({error.detail})"]
    if messages == ["ok"]:
        return "ok"
    for message in messages:
        problems.append(
            IntegrityProblem(
                "file",
                f"the SQLite file {path} is damaged: {message}. Restore it from a backup; "
                "rows in damaged pages may be unreadable",
            )
        )
    return "damaged"


def _check_weights(database: Database, problems: list[IntegrityProblem]) -> int:
    with database.transaction(readonly=True) as session:
        final_steps = _final_steps(session)
        not_blobs = _not_stored_as_blobs(session) if database.dialect_name == "sqlite" else {}
        count = 0
        for row in _checkpoint_rows(session):
            count += 1
            label = (
                "final weights"
                if final_steps.get(row.run_id) == row.step
                else f"checkpoint at step {row.step}"
            )
            detail = _weights_problem(row)
            stored_as = not_blobs.get((row.run_id, row.step))
            if stored_as is not None:
                detail = _stored_as_problem(stored_as, row, detail)
            if detail is not None:
                problems.append(
                    IntegrityProblem("weights", f"{label}: {detail}", row.run_id, row.step)
                )
        return count


def _checkpoint_rows(session: Session) -> Iterator[CheckpointRow]:
    statement = (
        select(CheckpointRow)
        .order_by(CheckpointRow.run_id, CheckpointRow.step)
        .execution_options(yield_per=_ROWS_PER_FETCH)
    )
    for row in session.scalars(statement):
        yield row
        session.expunge(row)  # do not keep every blob in the identity map


def _not_stored_as_blobs(session: Session) -> dict[tuple[int, int], str]:
    """(run id, step) -> SQLite's storage class of each weight blob that is no BLOB."""
    storage_class = func.typeof(CheckpointRow.__table__.c.weights)
    statement = select(CheckpointRow.run_id, CheckpointRow.step, storage_class).where(
        storage_class != "blob"
    )
    return {(int(run), int(step)): str(kind) for run, step, kind in session.execute(statement)}


def _stored_as_problem(storage_class: str, row: CheckpointRow, detail: str | None) -> str:
    how = f"stored as {storage_class.upper()}, not as a BLOB (edited outside trainq?)"
    if detail is not None:
        return f"{how}; {detail}"
    return (
        f"{how}; its bytes still match its checksum, so trainq reads it. Store it as a BLOB "
        f"again: UPDATE checkpoints SET weights = CAST(weights AS BLOB) WHERE run_id = "
        f"{row.run_id} AND step = {row.step}"
    )


def _final_steps(session: Session) -> dict[int, int]:
    """Run id -> the step of its final weights, for runs that succeeded."""
    statement = select(Run.id, Run.steps_done).where(Run.status == RunStatus.SUCCEEDED.value)
    return {int(run_id): int(steps) for run_id, steps in session.execute(statement)}


def _weights_problem(row: CheckpointRow) -> str | None:
    if row.size_bytes != len(row.weights):
        return (
            f"the blob is {len(row.weights)} bytes but was stored as {row.size_bytes}; it is "
            "truncated or overwritten"
        )
    try:
        decode_weights(row.weights, row.sha256)
    except WeightsChecksumError:
        return (
            "checksum mismatch: the weights are corrupt (a resume skips them and uses an older "
            "checkpoint; eval, export and predict of them fail)"
        )
    except WeightsCorruptError as error:
        return f"the blob is malformed: {error}"
    return None


def _check_chunks(database: Database, problems: list[IntegrityProblem]) -> int:
    statement = select(
        MetricChunkRow.run_id,
        MetricChunkRow.first_step,
        MetricChunkRow.n_steps,
        # Cast: the length of a TEXT is in characters (up to its first NUL), a BLOB's in bytes.
        func.length(cast(MetricChunkRow.__table__.c.loss, LargeBinary)),
        func.length(cast(MetricChunkRow.__table__.c.accuracy, LargeBinary)),
    ).order_by(MetricChunkRow.run_id, MetricChunkRow.first_step)

    def check(session: Session) -> int:
        count = 0
        for run_id, first_step, n_steps, loss_bytes, accuracy_bytes in session.execute(statement):
            count += 1
            expected = n_steps * _BYTES_PER_STEP
            if n_steps >= 1 and loss_bytes == expected and accuracy_bytes == expected:
                continue
            detail = (
                f"metrics of steps {first_step:,}..{first_step + n_steps - 1:,}: "
                f"{loss_bytes} bytes of loss and {accuracy_bytes} of accuracy for {n_steps} "
                f"steps (expected {expected} each); `trainq metrics` cannot read them"
            )
            problems.append(IntegrityProblem("metrics", detail, run_id, first_step))
        return count

    return database.run(check, readonly=True)
