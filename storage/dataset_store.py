"""Dataset versions: store one (its metadata and chunks, in one transaction), find, list, read
its chunks, say who uses it, remove it.

Storage holds bytes and metadata only: the canonical form, its hash and its chunks are made by
``worker.datasets`` (which storage must not import). What storage does check is that what it
keeps is what it was told: every chunk's SHA-256, the chunks in order, and the whole under the
content hash the version is stored by. A version is written once and never changed: the same hash
added again (under any name) writes nothing and returns the version already there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from storage.dataset_records import DatasetUsage, DatasetVersionRecord
from storage.dataset_refs import check_dataset_name, check_sha256
from storage.dataset_rows import (
    find_version,
    require_dataset_version,
    version_by_hash,
    version_to_record,
)
from storage.errors import InvalidStateError, InvalidValueError
from storage.models import (
    DatasetChunkRow,
    DatasetVersionRow,
    EvaluationJob,
    Run,
    SweepRow,
    SweepTrialRow,
)
from storage.record_mapping import check_finite_json
from storage.repository_base import RepositoryBase
from storage.sweep_records import SweepStatus

#: Chunks inserted per statement: 4 of 4 MiB, so a statement stays well inside PostgreSQL's
#: statement timeout and the process holds no more than this beyond the caller's own chunk.
INSERT_BATCH_CHUNKS: Final = 4
#: PostgreSQL advisory lock taken by every add, so that two adds never race for the same name's
#: next number or the same hash ("trnqdata" in ASCII). SQLite's BEGIN IMMEDIATE does the same.
_ADD_LOCK_KEY: Final = 0x74726E7164617461
FEATURE_KINDS: Final = ("uint8", "float32")
#: How many run ids a refusal to remove lists.
_LISTED_RUNS: Final = 10

#: One stored chunk: (index, bytes, SHA-256 hex of the bytes).
ChunkTuple = tuple[int, bytes, str]


class DatasetStore(RepositoryBase):
    """Dataset versions: metadata rows and their checksummed chunks."""

    def add_dataset_version(
        self,
        *,
        name: str,
        sha256: str,
        feature_kind: str,
        features: int,
        classes: int,
        train_examples: int,
        test_examples: int,
        class_names: Sequence[str],
        size_bytes: int,
        source: Mapping[str, Any],
        chunks: Iterable[ChunkTuple],
    ) -> tuple[DatasetVersionRecord, bool]:
        """Store a version under the next number of ``name``, in one transaction.

        Args:
            name: the dataset's name (``check_dataset_name``).
            sha256: the content hash: the SHA-256 of all the chunks' bytes, in order.
            feature_kind: ``uint8`` or ``float32``.
            features: D. classes: C. train_examples, test_examples: rows per split (0: none).
            class_names: C names, or none.
            size_bytes: the total length of the chunks.
            source: what was added (format, file names), as JSON.
            chunks: ``(index, bytes, sha256)`` from index 0 on; consumed only when the version
                is new, as it is stored, in batches of :data:`INSERT_BATCH_CHUNKS`.

        Returns:
            ``(version, True)`` when it was stored now; ``(existing, False)`` when a version
            with this hash was there already (nothing written, ``chunks`` not read).

        Raises:
            InvalidValueError: a bad name or field, or the chunks are not what they claim (a
                chunk out of order or failing its SHA-256, the whole not ``sha256``, a total
                other than ``size_bytes``); nothing was stored.
        """
        metadata = _checked_metadata(
            name=name,
            sha256=sha256,
            feature_kind=feature_kind,
            features=features,
            classes=classes,
            train_examples=train_examples,
            test_examples=test_examples,
            class_names=class_names,
            size_bytes=size_bytes,
            source=source,
        )
        now = self._now()

        def store(session: Session) -> tuple[DatasetVersionRecord, bool]:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADD_LOCK_KEY})
            existing = version_by_hash(session, sha256)
            if existing is not None:
                return version_to_record(existing), False
            newest = session.scalar(
                select(func.max(DatasetVersionRow.version)).where(DatasetVersionRow.name == name)
            )
            row = DatasetVersionRow(
                **metadata, version=(newest or 0) + 1, chunk_count=0, created_at=now
            )
            session.add(row)
            session.flush()
            row.chunk_count = _insert_chunks(session, sha256, size_bytes, chunks)
            session.flush()
            return version_to_record(row), True

        # Not retried: the chunks are an iterator, read once.
        return self._db.run(store)

    def find_dataset_version(self, ref: str) -> DatasetVersionRecord:
        """The version ``ref`` names: ``NAME`` (its newest), ``NAME@N``, or its content hash
        (whole, or a unique prefix of at least 8 hex characters).

        Raises:
            InvalidValueError: ``ref`` is none of these forms.
            DatasetNotFoundError: nothing matches (the message says what is stored), or a
                prefix matches several versions.
        """
        return self._db.run(
            lambda session: version_to_record(find_version(session, ref)),
            readonly=True,
            idempotent=True,
        )

    def get_dataset_version(self, sha256: str) -> DatasetVersionRecord:
        """The version stored under the content hash ``sha256``.

        Raises:
            DatasetNotFoundError: no version has this hash (never added, or removed).
        """
        return self._db.run(
            lambda session: version_to_record(require_dataset_version(session, sha256)),
            readonly=True,
            idempotent=True,
        )

    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersionRecord]:
        """Every version (or every version of ``name``), by name, then number."""
        statement = select(DatasetVersionRow).order_by(
            DatasetVersionRow.name, DatasetVersionRow.version
        )
        if name is not None:
            statement = statement.where(DatasetVersionRow.name == name)

        def listing(session: Session) -> list[DatasetVersionRecord]:
            return [version_to_record(row) for row in session.scalars(statement)]

        return self._db.run(listing, readonly=True, idempotent=True)

    def read_dataset_chunks(self, sha256: str) -> list[ChunkTuple]:
        """A version's chunks in index order, as stored (the reader verifies them).

        Raises:
            DatasetNotFoundError: no version has this hash (never added, or removed).
        """
        statement = (
            select(DatasetChunkRow.chunk_index, DatasetChunkRow.data, DatasetChunkRow.chunk_sha256)
            .where(DatasetChunkRow.sha256 == sha256)
            .order_by(DatasetChunkRow.chunk_index)
        )

        def read(session: Session) -> list[ChunkTuple]:
            require_dataset_version(session, sha256)
            return [
                (int(index), bytes(data), str(digest))
                for index, data, digest in session.execute(statement)
            ]

        return self._db.run(read, readonly=True, idempotent=True)

    def dataset_usage(self, sha256: str) -> DatasetUsage:
        """The training runs that train on the version ``sha256``, and their evaluation jobs
        (whether or not the version is still stored)."""
        return self._db.run(lambda session: _usage(session, sha256), readonly=True, idempotent=True)

    def delete_dataset_version(self, sha256: str, *, force: bool) -> DatasetUsage:
        """Remove a version and its chunks.

        Refused while runs refer to it (or trials of a running sweep still to start), unless
        ``force``: then the runs keep their rows, metrics and results, but cannot be resumed,
        evaluated or predicted any more (their jobs fail saying the version was removed).

        Returns:
            The runs and evaluation jobs that referred to it.

        Raises:
            DatasetNotFoundError: no version has this hash.
            InvalidStateError: runs refer to it and ``force`` is off; nothing was removed.
        """
        check_sha256(sha256)

        def remove(session: Session) -> DatasetUsage:
            row = require_dataset_version(session, sha256, for_update=True)
            usage = _usage(session, sha256)
            planned = _planned_trials(session, sha256)
            if (usage.in_use or planned) and not force:
                raise _in_use(f"{row.name}@{row.version}", sha256, usage, planned)
            session.execute(delete(DatasetChunkRow).where(DatasetChunkRow.sha256 == sha256))
            session.execute(delete(DatasetVersionRow).where(DatasetVersionRow.sha256 == sha256))
            return usage

        return self._db.run(remove)


def _checked_metadata(
    *,
    name: str,
    sha256: str,
    feature_kind: str,
    features: int,
    classes: int,
    train_examples: int,
    test_examples: int,
    class_names: Sequence[str],
    size_bytes: int,
    source: Mapping[str, Any],
) -> dict[str, Any]:
    """The columns of a new version, each checked (so no driver ever sees a bad value)."""
    check_dataset_name(name)
    check_sha256(sha256, "content hash")
    if feature_kind not in FEATURE_KINDS:
        raise InvalidValueError(f"feature_kind {feature_kind!r}: use one of {FEATURE_KINDS}")
    for what, value, low in (
        ("features", features, 1),
        ("classes", classes, 2),
        ("train_examples", train_examples, 1),
        ("test_examples", test_examples, 0),
        ("size_bytes", size_bytes, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidValueError(f"{what} {value!r} must be a whole number of at least {low}")
    names = list(class_names)
    if names and (len(names) != classes or not all(isinstance(n, str) for n in names)):
        raise InvalidValueError(f"{len(names)} class names for {classes} classes")
    check_finite_json(dict(source), "dataset source")
    return {
        "name": name,
        "sha256": sha256,
        "feature_kind": feature_kind,
        "features": features,
        "classes": classes,
        "train_examples": train_examples,
        "test_examples": test_examples,
        "class_names": names,
        "size_bytes": size_bytes,
        "source": dict(source),
    }


def _insert_chunks(
    session: Session, sha256: str, size_bytes: int, chunks: Iterable[ChunkTuple]
) -> int:
    """Insert the chunks in batches, checking each and the whole; return how many there were.

    Raises:
        InvalidValueError: a chunk is out of order or fails its SHA-256, or the whole is not
            ``sha256`` or not ``size_bytes`` long (the caller's transaction is rolled back).
    """
    digest = hashlib.sha256()
    count = total = 0
    batch: list[dict[str, Any]] = []
    table = insert(DatasetChunkRow)
    for index, data, chunk_sha256 in chunks:
        if index != count:
            raise InvalidValueError(f"dataset chunk {index} given where chunk {count} belongs")
        if hashlib.sha256(data).hexdigest() != chunk_sha256:
            raise InvalidValueError(f"dataset chunk {index} does not match its SHA-256")
        digest.update(data)
        count, total = count + 1, total + len(data)
        batch.append(
            {"sha256": sha256, "chunk_index": index, "data": data, "chunk_sha256": chunk_sha256}
        )
        if len(batch) == INSERT_BATCH_CHUNKS:
            session.execute(table, batch)
            batch = []
    if batch:
        session.execute(table, batch)
    if digest.hexdigest() != sha256:
        raise InvalidValueError(
            f"the chunks' bytes hash to {digest.hexdigest()[:12]}…, not to the content hash "
            f"{sha256[:12]}… they were given under; nothing was stored"
        )
    if total != size_bytes:
        raise InvalidValueError(f"the chunks hold {total:,} bytes, not size_bytes={size_bytes:,}")
    return count


def _usage(session: Session, sha256: str) -> DatasetUsage:
    runs = select(Run.id).where(Run.data_sha256 == sha256).order_by(Run.id)
    evaluations = (
        select(EvaluationJob.id)
        .join(Run, EvaluationJob.run_id == Run.id)
        .where(Run.data_sha256 == sha256)
        .order_by(EvaluationJob.id)
    )
    return DatasetUsage(
        run_ids=tuple(int(i) for i in session.scalars(runs)),
        evaluation_job_ids=tuple(int(i) for i in session.scalars(evaluations)),
    )


def _planned_trials(session: Session, sha256: str) -> dict[int, int]:
    """Trials of running sweeps, not started yet, that will train on ``sha256``: by sweep."""
    statement = (
        select(SweepTrialRow.sweep_id, func.count())
        .join(SweepRow, SweepRow.id == SweepTrialRow.sweep_id)
        .where(
            SweepRow.status == SweepStatus.RUNNING.value,
            SweepTrialRow.run_id.is_(None),
            SweepTrialRow.config["data_sha256"].as_string() == sha256,
        )
        .group_by(SweepTrialRow.sweep_id)
        .order_by(SweepTrialRow.sweep_id)
    )
    return {int(sweep): int(count) for sweep, count in session.execute(statement)}


def _in_use(
    label: str, sha256: str, usage: DatasetUsage, planned: Mapping[int, int]
) -> InvalidStateError:
    """The refusal to remove a version that runs refer to, saying what --force would do."""
    parts = []
    if usage.run_ids:
        ids = ", ".join(map(str, usage.run_ids[:_LISTED_RUNS]))
        more = len(usage.run_ids) - _LISTED_RUNS
        parts.append(
            f"{_count(len(usage.run_ids), 'run')} ({ids}{f' and {more} more' if more > 0 else ''})"
        )
    if usage.evaluation_job_ids:
        parts.append(_count(len(usage.evaluation_job_ids), "evaluation job"))
    for sweep, count in planned.items():
        parts.append(f"{_count(count, 'trial')} of sweep {sweep} not started yet")
    return InvalidStateError(
        f"dataset {label} ({sha256[:12]}) is used by {', '.join(parts)}; nothing was removed. "
        f"`trainq data rm {label} --force` removes it anyway: those runs keep their rows, "
        "metrics and results, but can no longer be resumed, evaluated or predicted (their jobs "
        "fail saying the dataset was removed from this cluster)"
    )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'s' if number != 1 else ''}"
