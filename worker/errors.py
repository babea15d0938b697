"""Errors raised by the worker layer (configs, data, training, queue)."""

from __future__ import annotations

from storage.errors import TrainqError


class WorkerError(TrainqError):
    """Raised for a failure in the worker layer; the parent of the errors below."""


class InvalidConfigError(WorkerError):
    """Raised when a job's config fails validation; the message names each field."""


class InvalidDatasetError(InvalidConfigError):
    """Raised when dataset files fail validation; the message names the file, split and problem."""


class DeterministicJobError(WorkerError):
    """Raised for a failure that would repeat on every attempt: the job ends FAILED, no retry."""


class DatasetNotFoundError(DeterministicJobError):
    """Raised when the Fashion-MNIST files are in none of the searched places."""


class DatasetCorruptError(DeterministicJobError):
    """Raised when a dataset file has the wrong magic number, count, size or compression."""


class DatasetDamagedError(DatasetCorruptError):
    """Raised when a stored or cached dataset version fails a chunk checksum or its content hash."""


class DatasetNotAvailableError(DeterministicJobError):
    """Raised when a job's dataset version is no longer stored in this cluster (removed with
    ``trainq data rm --force``): the job fails, since every attempt would meet the same."""


class DivergenceError(DeterministicJobError):
    """Raised when the training loss becomes NaN or infinite."""


class IncompatibleWeightsError(DeterministicJobError):
    """Raised when weights lack an array, have a wrong shape, or do not fit the run resumed."""


class DeviceUnavailableError(DeterministicJobError):
    """Raised when ``--device gpu`` was asked for and TensorFlow sees no GPU."""


class BrokerUnavailableError(WorkerError):
    """Raised when the Redis broker cannot be reached to publish a job."""
