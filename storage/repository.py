"""The repository: every read and write of trainq's state goes through :class:`Repository`.

What it offers is listed, by noun, in ``storage.store_contract.StoreContract``: start there to
find an operation and the module that holds its code. The repository is assembled from one part
per concern (each in its own module); all of them return the frozen records of
``storage.records`` and never a row or a session.
"""

from __future__ import annotations

from storage.attempt_log import AttemptLog
from storage.checkpoint_retention import CheckpointRetention
from storage.checkpoint_store import CheckpointStore
from storage.dashboard_reads import DashboardReads
from storage.dataset_store import DatasetStore
from storage.evaluation_store import EvaluationStore
from storage.metric_store import MetricStore
from storage.metrics_reads import MetricsReads
from storage.reconciliation import Reconciliation
from storage.repository_base import utc_now
from storage.run_annotations import RunAnnotations
from storage.run_lifecycle import RunLifecycle
from storage.run_queries import RunQueries
from storage.run_release import RunRelease
from storage.run_removal import RunRemoval
from storage.run_search import RunSearch
from storage.rung_store import RungStore
from storage.store_contract import StoreContract
from storage.sweep_store import SweepStore
from storage.validation_store import ValidationStore

__all__ = ["Repository", "utc_now"]


class Repository(
    RunLifecycle,
    RunQueries,
    RunAnnotations,
    RunRemoval,
    RunSearch,
    DashboardReads,  # before MetricStore, which it builds on
    MetricStore,
    CheckpointStore,
    CheckpointRetention,
    EvaluationStore,
    Reconciliation,
    SweepStore,
    RungStore,
    ValidationStore,
    RunRelease,
    AttemptLog,
    DatasetStore,
    MetricsReads,
):
    """trainq's system of record. Build it as ``Repository(Database(url))``.

    Its operations, one line each and grouped by noun: ``storage.store_contract``.

    Datetimes in and out are tz-aware UTC. Writes made on behalf of a worker carry the attempt
    the worker claimed and are refused (:class:`~storage.errors.StaleAttemptError`) once a newer
    attempt owns the run; duplicate writes of the same attempt are no-ops.
    """


def _offers_the_store_contract(repository: Repository) -> StoreContract:
    """Never called: mypy checks here that Repository offers every operation of the contract,
    with compatible signatures (``tests/storage/test_store_contract.py`` checks the converse)."""
    return repository
