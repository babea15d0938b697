"""Dataset rows inside a transaction: look-ups by hash and reference, and rows to records."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.dataset_records import DatasetVersionRecord
from storage.dataset_refs import DatasetRef, parse_dataset_ref
from storage.errors import DatasetNotFoundError
from storage.models import DatasetVersionRow

#: How many names or versions a "not found" message lists before it says "and N more".
_LISTED = 8


def version_to_record(row: DatasetVersionRow) -> DatasetVersionRecord:
    """Convert a ``dataset_versions`` row into a :class:`DatasetVersionRecord`."""
    return DatasetVersionRecord(
        id=row.id,
        name=row.name,
        version=row.version,
        sha256=row.sha256,
        feature_kind=row.feature_kind,
        features=row.features,
        classes=row.classes,
        train_examples=row.train_examples,
        test_examples=row.test_examples,
        class_names=tuple(str(name) for name in row.class_names),
        size_bytes=row.size_bytes,
        chunk_count=row.chunk_count,
        source=dict(row.source),
        created_at=row.created_at,
    )


def version_by_hash(
    session: Session, sha256: str, *, lock: bool = False, for_update: bool = False
) -> DatasetVersionRow | None:
    """The version stored under ``sha256``, or None.

    Args:
        lock: on PostgreSQL, hold a shared lock on the row until the transaction ends (a run
            being created on it), so that a removal waits for it and then sees the run.
        for_update: hold an exclusive lock instead (the removal itself).
    """
    statement = select(DatasetVersionRow).where(DatasetVersionRow.sha256 == sha256)
    if lock or for_update:
        statement = statement.with_for_update(read=not for_update)
    return session.scalars(statement).one_or_none()


def require_dataset_version(
    session: Session, sha256: str, *, lock: bool = False, for_update: bool = False
) -> DatasetVersionRow:
    """The version stored under ``sha256`` (locked as :func:`version_by_hash` says).

    Raises:
        DatasetNotFoundError: no version has this hash (never added, or removed).
    """
    row = version_by_hash(session, sha256, lock=lock, for_update=for_update)
    if row is None:
        raise DatasetNotFoundError(
            f"no dataset version has the hash {sha256[:12]}… (it was never added to this "
            "cluster, or it was removed); `trainq data list` shows the versions stored"
        )
    return row


def find_version(session: Session, text: str) -> DatasetVersionRow:
    """The version ``text`` refers to: ``NAME`` (its newest), ``NAME@N`` or a hash (prefix).

    Raises:
        InvalidValueError: ``text`` is none of these forms.
        DatasetNotFoundError: nothing matches, or a hash prefix matches several versions; the
            message names what exists.
    """
    ref = parse_dataset_ref(text)
    if ref.hash_prefix is not None:
        return _by_hash_prefix(session, ref)
    assert ref.name is not None
    versions = select(DatasetVersionRow).where(DatasetVersionRow.name == ref.name)
    if ref.version is None:
        row = session.scalars(versions.order_by(DatasetVersionRow.version.desc()).limit(1)).first()
    else:
        row = session.scalars(versions.where(DatasetVersionRow.version == ref.version)).first()
    if row is not None:
        return row
    numbers = list(
        session.scalars(
            select(DatasetVersionRow.version)
            .where(DatasetVersionRow.name == ref.name)
            .order_by(DatasetVersionRow.version)
        )
    )
    if numbers:
        raise DatasetNotFoundError(
            f"dataset {ref.name} has no version {ref.version}; its versions are "
            f"{_listed([f'{ref.name}@{n}' for n in numbers])}"
        )
    raise DatasetNotFoundError(f"no dataset named {ref.name!r}; {_stored_names(session)}")


def _by_hash_prefix(session: Session, ref: DatasetRef) -> DatasetVersionRow:
    assert ref.hash_prefix is not None
    # The prefix is hex only (parse_dataset_ref): nothing in it is a LIKE wildcard.
    statement = (
        select(DatasetVersionRow)
        .where(DatasetVersionRow.sha256.like(f"{ref.hash_prefix}%"))
        .order_by(DatasetVersionRow.name, DatasetVersionRow.version)
        .limit(_LISTED + 1)
    )
    rows = list(session.scalars(statement))
    if len(rows) == 1:
        return rows[0]
    if not rows:
        raise DatasetNotFoundError(
            f"no dataset version's hash starts with {ref.hash_prefix}; {_stored_names(session)}"
        )
    raise DatasetNotFoundError(
        f"the hash prefix {ref.hash_prefix} matches several versions "
        f"({_listed([f'{row.name}@{row.version}' for row in rows])}); give more characters"
    )


def _stored_names(session: Session) -> str:
    """What exists, for a "not found" message: the names stored and their version counts."""
    counts = list(
        session.execute(
            select(DatasetVersionRow.name, func.count())
            .group_by(DatasetVersionRow.name)
            .order_by(DatasetVersionRow.name)
        )
    )
    if not counts:
        return "no dataset is stored yet: add one with `trainq data add NAME PATH...`"
    names = [f"{name} ({count} version{'s' if count != 1 else ''})" for name, count in counts]
    return f"stored: {_listed(names)}; `trainq data list` shows them"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown if len(items) <= _LISTED else f"{shown} and {len(items) - _LISTED} more"
