"""trainq's exception tree.

Every error trainq raises on purpose derives from :class:`TrainqError`. The tree is rooted here, in
the bottom layer, so that ``worker`` and ``api_cli`` can extend it without importing upwards. Each
message says what went wrong *and what to do next*; the CLI prints it without a traceback.
"""

from __future__ import annotations


class TrainqError(Exception):
    """Raised for every failure trainq anticipates; the root of the tree."""


class ConfigurationError(TrainqError):
    """Raised when a ``TRAINQ_*`` environment variable holds an unusable value."""


class OutputWriteError(TrainqError):
    """Raised when a file the user asked for cannot be written (disk full, read-only, denied)."""


class StorageError(TrainqError):
    """Raised for a database problem: unreachable, misconfigured, or a driver failure."""


class DatabaseUnavailableError(StorageError):
    """Raised when the database cannot be reached (connection refused, timeout, server restart)."""


class SchemaOutdatedError(StorageError):
    """Raised when the database schema is missing or older than this version of trainq."""


class NotFoundError(TrainqError):
    """Raised when a requested object does not exist."""


class RunNotFoundError(NotFoundError):
    """Raised when no run has the requested id."""


class CheckpointNotFoundError(NotFoundError):
    """Raised when a run has no checkpoint at the requested step (or none at all)."""


class StaleAttemptError(TrainqError):
    """Raised when a write carries an attempt number that no longer owns the run (fencing)."""


class InvalidStateError(TrainqError):
    """Raised when an operation does not fit the run's current status (cancel a finished run)."""


class WeightsCorruptError(TrainqError):
    """Raised when a weight blob fails its checksum, is truncated, or is not what it claims."""


class DatabaseBusyError(DatabaseUnavailableError):
    """Raised when a lock or a statement timed out (SQLite busy, PostgreSQL timeouts)."""


class TransactionConflictError(StorageError):
    """Raised when PostgreSQL aborted a transaction for a serialization failure or a deadlock."""


class InvalidValueError(TrainqError, ValueError):
    """Raised when a value cannot be stored as given (NaN in a JSON column, bad tag, bad chunk)."""


class WeightsFormatError(WeightsCorruptError):
    """Raised when a weight blob's structure is wrong: magic, version, header, length, dtype."""


class WeightsChecksumError(WeightsCorruptError):
    """Raised when a weight blob's SHA-256 differs from the one stored with it."""


class DatabaseCorruptError(StorageError):
    """Raised when the database file is not a database, is empty, or its pages are damaged."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        #: What SQLite said, without the advice (for reports that give their own).
        self.detail = detail or message


class DatabaseReadOnlyError(StorageError):
    """Raised when a write reaches a database that this process may only read."""


class DiskFullError(DatabaseUnavailableError):
    """Raised when the database's file system has no space left for a write."""


class SweepNotFoundError(NotFoundError):
    """Raised when no sweep has the requested id."""


class EvaluationNotFoundError(NotFoundError):
    """No stored evaluation has the requested id."""


class EvaluationJobNotFoundError(NotFoundError):
    """No evaluation job has the requested id."""


class DatasetNotFoundError(NotFoundError):
    """Raised when no stored dataset version matches a name, ``NAME@N`` or hash."""


class QuerySyntaxError(InvalidValueError):
    """Raised when a run query (``--where``, ``--sort``) cannot be read: ``message`` names the
    mistake, ``column`` (1-based) is where it is in ``text``."""

    def __init__(self, message: str, column: int, text: str = "") -> None:
        super().__init__(f"{message} (column {column})")
        self.message = message
        self.column = column
        self.text = text

    def pointer(self, indent: str = "  ") -> str:
        """The query and a caret under the mistake, on two lines."""
        # Every blank as one space, so the caret stays under the same character.
        line = "".join(" " if char.isspace() else char for char in self.text)
        return f"{indent}{line}\n{indent}{' ' * (self.column - 1)}^"
