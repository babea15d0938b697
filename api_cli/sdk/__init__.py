"""trainq's Python API: ``import trainq`` (this package is installed under that name too).

Everything the CLI does, from one process: submit training and evaluation jobs, wait for them,
read runs, per-step metrics (NumPy arrays) and evaluations, cancel. Where jobs run is decided
once, by the settings: embedded (no ``TRAINQ_BROKER_URL``) they run in a thread of this process;
with a broker they are published for ``trainq worker`` processes.

Example::

    import trainq

    with trainq.Client() as client:
        run = client.submit(steps=2000, init="zeros", learning_rate=0.05, momentum=0.9)
        run = client.wait(run.id)
        metrics = client.metrics(run.id)
        print(run.status, metrics.loss[-100:].mean())

No Typer, Rich or TensorFlow is imported here (an embedded job imports TensorFlow when it trains).
"""

from __future__ import annotations

from api_cli.sdk._client import Client
from api_cli.sdk._records import Metrics
from storage.dataset_records import DatasetUsage, DatasetVersionRecord
from storage.errors import (
    CheckpointNotFoundError,
    DatasetNotFoundError,
    EvaluationJobNotFoundError,
    InvalidStateError,
    NotFoundError,
    RunNotFoundError,
    TrainqError,
)
from storage.records import (
    EvaluationJobRecord,
    EvaluationRecord,
    JobKind,
    RemovedRuns,
    RunRecord,
    RunStatus,
)
from storage.retention_records import CheckpointKeep, CheckpointThinning, RetentionReport
from storage.settings import Settings
from worker.config import Device, Init, Schedule, Split, TrainConfig
from worker.errors import BrokerUnavailableError, InvalidConfigError
from worker.queues import queue_for

__all__ = [
    "BrokerUnavailableError",
    "CheckpointKeep",
    "CheckpointNotFoundError",
    "CheckpointThinning",
    "Client",
    "DatasetNotFoundError",
    "DatasetUsage",
    "DatasetVersionRecord",
    "Device",
    "EvaluationJobNotFoundError",
    "EvaluationJobRecord",
    "EvaluationRecord",
    "Init",
    "InvalidConfigError",
    "InvalidStateError",
    "JobKind",
    "Metrics",
    "NotFoundError",
    "RemovedRuns",
    "RetentionReport",
    "RunNotFoundError",
    "RunRecord",
    "RunStatus",
    "Schedule",
    "Settings",
    "Split",
    "TrainConfig",
    "TrainqError",
    "queue_for",
]
