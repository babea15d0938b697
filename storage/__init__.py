"""storage: the system of record (SQLAlchemy 2.x on SQLite or PostgreSQL).

Everything other packages need is re-exported here; SQLAlchemy itself never leaves this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.dashboard_reads import RunPage
    from storage.database import Database
    from storage.dataset_records import DatasetUsage, DatasetVersionRecord
    from storage.engine import dispose_engines
    from storage.errors import (
        CheckpointNotFoundError,
        ConfigurationError,
        DatabaseBusyError,
        DatabaseUnavailableError,
        DatasetNotFoundError,
        EvaluationJobNotFoundError,
        EvaluationNotFoundError,
        InvalidStateError,
        InvalidValueError,
        NotFoundError,
        QuerySyntaxError,
        RunNotFoundError,
        SchemaOutdatedError,
        StaleAttemptError,
        StorageError,
        TrainqError,
        TransactionConflictError,
        WeightsChecksumError,
        WeightsCorruptError,
        WeightsFormatError,
    )
    from storage.records import (
        AttemptOutcome,
        AttemptRecord,
        Checkpoint,
        CheckpointInfo,
        ChunkAck,
        EvaluationJobRecord,
        EvaluationRecord,
        JobKind,
        MetricChunk,
        MetricRow,
        RunRecord,
        RunStatus,
    )
    from storage.redaction import redact
    from storage.repository import Repository, utc_now
    from storage.run_query import RunQuery, SortKey, parse_run_query, parse_run_sort
    from storage.settings import Settings
    from storage.store_contract import StoreContract
    from storage.validation import check_tags
    from storage.weights_codec import decode_weights, encode_weights, sha256_hex

# Imported on first use (PEP 562): `from storage import Settings` must not pull in SQLAlchemy,
# Alembic and NumPy, or `trainq --help` would take a third of a second longer.
_EXPORTS = {
    "AttemptOutcome": "storage.records",
    "AttemptRecord": "storage.records",
    "Checkpoint": "storage.records",
    "CheckpointInfo": "storage.records",
    "CheckpointNotFoundError": "storage.errors",
    "ChunkAck": "storage.records",
    "ConfigurationError": "storage.errors",
    "Database": "storage.database",
    "DatasetNotFoundError": "storage.errors",
    "DatasetUsage": "storage.dataset_records",
    "DatasetVersionRecord": "storage.dataset_records",
    "DatabaseBusyError": "storage.errors",
    "DatabaseUnavailableError": "storage.errors",
    "EvaluationJobNotFoundError": "storage.errors",
    "EvaluationJobRecord": "storage.records",
    "EvaluationNotFoundError": "storage.errors",
    "EvaluationRecord": "storage.records",
    "InvalidStateError": "storage.errors",
    "InvalidValueError": "storage.errors",
    "JobKind": "storage.records",
    "MetricChunk": "storage.records",
    "MetricRow": "storage.records",
    "NotFoundError": "storage.errors",
    "QuerySyntaxError": "storage.errors",
    "Repository": "storage.repository",
    "RunPage": "storage.dashboard_reads",
    "RunQuery": "storage.run_query",
    "RunNotFoundError": "storage.errors",
    "RunRecord": "storage.records",
    "RunStatus": "storage.records",
    "SchemaOutdatedError": "storage.errors",
    "Settings": "storage.settings",
    "SortKey": "storage.run_query",
    "StaleAttemptError": "storage.errors",
    "StorageError": "storage.errors",
    "StoreContract": "storage.store_contract",
    "TrainqError": "storage.errors",
    "TransactionConflictError": "storage.errors",
    "WeightsChecksumError": "storage.errors",
    "WeightsCorruptError": "storage.errors",
    "WeightsFormatError": "storage.errors",
    "check_tags": "storage.validation",
    "redact": "storage.redaction",
    "decode_weights": "storage.weights_codec",
    "dispose_engines": "storage.engine",
    "encode_weights": "storage.weights_codec",
    "parse_run_query": "storage.run_query",
    "parse_run_sort": "storage.run_query",
    "sha256_hex": "storage.weights_codec",
    "utc_now": "storage.repository",
}

__all__ = [
    "AttemptOutcome",
    "AttemptRecord",
    "Checkpoint",
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "ChunkAck",
    "ConfigurationError",
    "Database",
    "DatabaseBusyError",
    "DatabaseUnavailableError",
    "DatasetNotFoundError",
    "DatasetUsage",
    "DatasetVersionRecord",
    "EvaluationJobNotFoundError",
    "EvaluationJobRecord",
    "EvaluationNotFoundError",
    "EvaluationRecord",
    "InvalidStateError",
    "InvalidValueError",
    "JobKind",
    "MetricChunk",
    "MetricRow",
    "NotFoundError",
    "QuerySyntaxError",
    "Repository",
    "RunNotFoundError",
    "RunPage",
    "RunQuery",
    "RunRecord",
    "RunStatus",
    "SchemaOutdatedError",
    "Settings",
    "SortKey",
    "StaleAttemptError",
    "StorageError",
    "StoreContract",
    "TrainqError",
    "TransactionConflictError",
    "WeightsChecksumError",
    "WeightsCorruptError",
    "WeightsFormatError",
    "check_tags",
    "decode_weights",
    "dispose_engines",
    "encode_weights",
    "parse_run_query",
    "parse_run_sort",
    "redact",
    "sha256_hex",
    "utc_now",
]


def __getattr__(name: str) -> Any:
    """Import a re-exported name from its module the first time it is used."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
