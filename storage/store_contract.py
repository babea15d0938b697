"""Every operation trainq's store offers, in one place, grouped by noun.

:class:`StoreContract` is what :class:`storage.Repository` promises: mypy checks the repository
against it (``storage.repository``) and ``tests/storage/test_store_contract.py`` checks that the
two list the same operations with the same parameters. Each group names the module that holds
its code; the full docstrings (arguments, errors raised) are there.

Rules that hold for every operation:

* Records in and out are the frozen dataclasses of ``storage.records``,
  ``storage.sweep_records`` and ``storage.dataset_records``; no row or session leaves storage.
* Each call is one transaction, opened by ``Database.run`` (``storage.database``): it commits,
  rolls back on error, closes, and turns every SQLAlchemy or driver error into a
  :class:`~storage.errors.StorageError` (``storage.driver_errors``). Reads and idempotent writes
  are retried through a short outage of PostgreSQL.
* Writes made for a worker carry the attempt it claimed and raise
  :class:`~storage.errors.StaleAttemptError` once a newer attempt owns the job; a repeated write
  of the same attempt is a no-op.
* Datetimes are tz-aware UTC. Every time that decides who owns a job (a lease's end, claims,
  requeues, redispatch) and every time written with a job's state is the database server's
  (``storage.server_clock``), never a worker's; ``now`` parameters (and ``Repository``'s
  ``clock``) exist for tests, and ``now=None`` means the server's clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from storage.dashboard_reads import DEFAULT_MAX_POINTS
from storage.metrics_reads import WAIT_BUCKETS_S
from storage.records import JobKind

if TYPE_CHECKING:
    import numpy as np

    from storage.dashboard_reads import LatestMetrics, MetricCurve, RunPage
    from storage.dataset_records import DatasetUsage, DatasetVersionRecord
    from storage.errors import StaleAttemptError
    from storage.metric_store import StepArray
    from storage.metrics_reads import MetricsSnapshot
    from storage.records import (
        AttemptRecord,
        Checkpoint,
        CheckpointInfo,
        ChunkAck,
        EvaluationJobRecord,
        EvaluationRecord,
        FloatArray,
        JobRecord,
        MetricChunk,
        MetricRow,
        RemovedRuns,
        RunRecord,
        RunStatus,
    )
    from storage.retention_records import CheckpointKeep, CheckpointThinning
    from storage.run_query import RunQuery, SortKey
    from storage.sweep_records import (
        PlannedTrial,
        RungDecision,
        RungEntry,
        RungResult,
        SweepRecord,
        SweepTrial,
        ValidationMetric,
    )


class RunOperations(Protocol):
    """Jobs (training runs and evaluation jobs) from creation to cancel, and reading them.

    Code: ``storage/run_lifecycle.py`` (create, publish, cancel), ``storage/run_queries.py``
    (get, list, count), ``storage/run_search.py`` (query).
    """

    def create_run(
        self,
        *,
        kind: JobKind,
        config: dict[str, Any],
        seed: int,
        queue: str,
        max_attempts: int,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RunRecord:
        """Insert a QUEUED training run at attempt 0; publish it only after this returns."""

    def create_evaluation_job(
        self, *, run_id: int, checkpoint_step: int, split: str, queue: str, max_attempts: int
    ) -> EvaluationJobRecord:
        """Insert a QUEUED evaluation job of run ``run_id``'s checkpoint on ``split``."""

    def mark_published(self, run_id: int, *, kind: JobKind = JobKind.TRAIN) -> None:
        """Record that the job's message was just handed to the broker."""

    def request_cancel(self, run_id: int) -> RunRecord:
        """Cancel a training run (see ``cancel_job``)."""

    def cancel_job(self, run_id: int, *, kind: JobKind) -> JobRecord:
        """Cancel a job: QUEUED ends CANCELLED now; RUNNING is flagged, stops at its next chunk."""

    def get_run(self, run_id: int) -> RunRecord:
        """One training run by id."""

    def get_job(self, job_id: int, kind: JobKind) -> JobRecord:
        """A training run or an evaluation job by kind and id."""

    def get_evaluation_job(self, job_id: int) -> EvaluationJobRecord:
        """One evaluation job by id."""

    def list_runs(
        self,
        *,
        kind: JobKind | None = JobKind.TRAIN,
        statuses: Sequence[RunStatus] | None = None,
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
        limit: int | None = None,
        sweep_id: int | None = None,
        data_sha256: Collection[str] | None = None,
        archived: bool | None = False,
    ) -> list[RunRecord]:
        """Runs matching every filter (``archived`` None: archived or not), newest first."""

    def query_runs(
        self,
        where: str | RunQuery | None = None,
        sort: str | Sequence[SortKey] | None = None,
        limit: int | None = None,
        offset: int = 0,
        archived: bool | None = False,
        sweep_id: int | None = None,
        *,
        statuses: Sequence[RunStatus] | None = None,
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
        data_sha256: Collection[str] | None = None,
    ) -> RunPage:
        """Runs matching a query (docs/queries.md) and the filters, one page, with the total."""

    def list_evaluation_jobs(
        self, *, statuses: Sequence[RunStatus] | None = None, limit: int | None = None
    ) -> list[EvaluationJobRecord]:
        """Evaluation jobs, newest first, in one of ``statuses`` if given."""

    def count_runs_by_status(
        self, kind: JobKind | None = None, archived: bool | None = None
    ) -> dict[RunStatus, int]:
        """How many jobs are in each status (``archived``: of training runs; None: all)."""


class RunManagementOperations(Protocol):
    """What people change about runs after the fact, and deleting them for good.

    Code: ``storage/run_annotations.py`` (name, note, tags, archive), ``storage/run_removal.py``
    (delete runs or a sweep with its trials, reclaim SQLite's space).
    """

    def rename_run(self, run_id: int, name: str | None) -> RunRecord:
        """Give a run a new name (None or empty: no name)."""

    def set_run_note(self, run_id: int, note: str | None) -> RunRecord:
        """Replace a run's note (None or empty: remove it)."""

    def tag_run(self, run_id: int, tags: Mapping[str, str]) -> RunRecord:
        """Add tags to a run, replacing the values of keys it already has."""

    def untag_run(self, run_id: int, keys: Collection[str]) -> RunRecord:
        """Remove tags from a run by key (a key it does not have: InvalidValueError)."""

    def archive_runs(self, run_ids: Sequence[int]) -> list[RunRecord]:
        """Hide finished runs from listings (``list_runs(archived=...)``), all or nothing."""

    def unarchive_runs(self, run_ids: Sequence[int]) -> list[RunRecord]:
        """Bring archived runs back into the listings."""

    def archive_sweep(self, sweep_id: int) -> SweepRecord:
        """Archive a finished sweep and every trial it started."""

    def unarchive_sweep(self, sweep_id: int) -> SweepRecord:
        """Bring an archived sweep and its trials back into the listings."""

    def delete_runs(self, run_ids: Sequence[int], *, dry_run: bool = False) -> RemovedRuns:
        """Delete finished runs (not sweep trials) and all their rows, all or nothing."""

    def delete_sweep(self, sweep_id: int, *, dry_run: bool = False) -> RemovedRuns:
        """Delete a finished sweep, its planned trials and all its trials' runs."""

    def reclaim_space(self) -> int | None:
        """SQLite: VACUUM, returning the bytes the file shrank by; PostgreSQL: None, no-op."""


class AttemptOperations(Protocol):
    """A worker's attempt at a job: claim, lease, finish or hand back; the attempts' history.

    Code: ``storage/run_lifecycle.py`` (claim, renew, finish), ``storage/run_release.py``
    (hand back, release a dead owner's job), ``storage/attempt_log.py`` (history).
    """

    def claim_run(
        self,
        run_id: int,
        *,
        owner: str,
        worker_host: str,
        lease_ttl_s: float,
        now: datetime | None = None,
    ) -> RunRecord | None:
        """Take the training run for a new attempt if it is free; None if it is not."""

    def claim_evaluation_job(
        self,
        job_id: int,
        *,
        owner: str,
        worker_host: str,
        lease_ttl_s: float,
        now: datetime | None = None,
    ) -> EvaluationJobRecord | None:
        """``claim_run`` for an evaluation job (same rules, same fencing)."""

    def renew_lease(
        self, run_id: int, attempt: int, lease_ttl_s: float, *, kind: JobKind = JobKind.TRAIN
    ) -> ChunkAck:
        """Extend ``attempt``'s lease by ``lease_ttl_s`` from now; says whether cancel was asked."""

    def finish_run(
        self,
        run_id: int,
        attempt: int,
        status: RunStatus,
        *,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
        final_weights: Mapping[str, np.ndarray] | None = None,
        device: str | None = None,
    ) -> RunRecord:
        """End ``attempt``'s run in a terminal status, with its summary and final weights."""

    def finish_evaluation_job(
        self,
        job_id: int,
        attempt: int,
        status: RunStatus,
        *,
        error: str | None = None,
        device: str | None = None,
    ) -> EvaluationJobRecord:
        """``finish_run`` for an evaluation job (its result is saved before, fenced alike)."""

    def hand_back_run(
        self,
        run_id: int,
        attempt: int,
        *,
        owner: str,
        checkpoint: Mapping[str, np.ndarray] | None = None,
        checkpoint_step: int = 0,
        kind: JobKind = JobKind.TRAIN,
    ) -> JobRecord:
        """Give a running job back to the queue, keeping its work and its attempt budget."""

    def release_lost_run(
        self,
        run_id: int,
        *,
        owner: str,
        kind: JobKind = JobKind.TRAIN,
        spend_attempt: bool = True,
    ) -> JobRecord | None:
        """Move on a RUNNING job whose job process (the lease ``owner``) is known to be dead."""

    def list_attempts(self, run_id: int) -> list[AttemptRecord]:
        """The attempts of training run ``run_id``, first claim first."""


class MetricOperations(Protocol):
    """Per-step training metrics (in chunks) and validation metrics at checkpoints.

    Code: ``storage/metric_store.py``, ``storage/validation_store.py``.
    """

    def record_chunk(
        self,
        run_id: int,
        attempt: int,
        chunk: MetricChunk,
        *,
        lease_ttl_s: float,
        checkpoint: Mapping[str, np.ndarray] | None = None,
        validation: tuple[float, float] | None = None,
        device: str | None = None,
    ) -> ChunkAck:
        """Store one metric chunk (and the checkpoint at its end, with its validation) fenced."""

    def read_metric_arrays(
        self,
        run_id: int,
        *,
        first_step: int | None = None,
        last_step: int | None = None,
        every: int = 1,
    ) -> tuple[StepArray, FloatArray, FloatArray]:
        """A run's per-step metrics as arrays (steps, loss, accuracy) over a range of steps."""

    def read_metrics(
        self,
        run_id: int,
        *,
        first_step: int | None = None,
        last_step: int | None = None,
        every: int = 1,
    ) -> list[MetricRow]:
        """A run's metrics as one row per step (see ``read_metric_arrays``)."""

    def record_validation(self, run_id: int, step: int, loss: float, accuracy: float) -> None:
        """Store the validation metrics of ``run_id``'s checkpoint at ``step``."""

    def list_validation(self, run_id: int) -> list[ValidationMetric]:
        """A run's validation metrics by step (empty without a validation split)."""


class CheckpointOperations(Protocol):
    """Weight blobs per (run, step), verified on every read (written by ``record_chunk``).

    Code: ``storage/checkpoint_store.py``.
    """

    def latest_checkpoint(self, run_id: int) -> Checkpoint | None:
        """The newest checkpoint of a run, verified; None when it has none."""

    def get_checkpoint(self, run_id: int, step: int) -> Checkpoint:
        """The checkpoint of a run at ``step``, verified."""

    def list_checkpoints(self, run_id: int) -> list[CheckpointInfo]:
        """A run's checkpoints, oldest first, without loading their blobs."""


class RetentionOperations(Protocol):
    """Thinning the checkpoints of finished runs (``trainq gc``), one run per transaction.

    Code: ``storage/checkpoint_retention.py``.
    """

    def runs_to_thin(self, *, older_than_s: float | None = None) -> list[int]:
        """Ids of finished training runs with more than one checkpoint, oldest first."""

    def thin_checkpoints(
        self, run_id: int, *, keep: CheckpointKeep, dry_run: bool = False
    ) -> CheckpointThinning:
        """Remove a finished run's checkpoints that ``keep`` does not keep (never the newest)."""


class EvaluationOperations(Protocol):
    """Evaluation results of checkpoints (the jobs that compute them are in the groups above).

    Code: ``storage/evaluation_store.py``.
    """

    def save_evaluation(
        self,
        *,
        run_id: int,
        checkpoint_step: int,
        split: str,
        loss: float,
        accuracy: float,
        per_class_accuracy: Sequence[float | None],
        confusion: Sequence[Sequence[int]],
        job_id: int | None = None,
        job_attempt: int | None = None,
    ) -> EvaluationRecord:
        """Store the evaluation of a checkpoint, fenced on the eval job's attempt if given."""

    def get_evaluation(self, evaluation_id: int) -> EvaluationRecord:
        """One stored evaluation by id."""

    def get_evaluation_for_job(self, job_id: int) -> EvaluationRecord | None:
        """The evaluation an eval job saved, or None if it has not saved one."""

    def find_evaluation(
        self, run_id: int, checkpoint_step: int, split: str
    ) -> EvaluationRecord | None:
        """The newest evaluation of one checkpoint on one split, if any."""

    def list_evaluations(self, run_id: int) -> list[EvaluationRecord]:
        """A training run's evaluations, by checkpoint step then age."""

    def list_evaluations_of_runs(self, run_ids: Sequence[int]) -> dict[int, list[EvaluationRecord]]:
        """Several runs' evaluations in one query; runs without one are absent."""

    def search_evaluations(
        self, *, run_ids: Sequence[int] | None = None, split: str | None = None
    ) -> list[EvaluationRecord]:
        """Evaluations of any runs (or of ``run_ids``), on ``split`` if given, oldest first."""


class SweepOperations(Protocol):
    """Sweeps, their trials' slots, and ASHA's rung decisions.

    Code: ``storage/sweep_store.py`` (sweeps, slots), ``storage/rung_store.py`` (rungs).
    """

    def create_sweep(
        self,
        *,
        name: str | None,
        spec: dict[str, Any],
        trials: Sequence[PlannedTrial],
        max_concurrent: int,
        max_attempts: int,
    ) -> SweepRecord:
        """Store a sweep and its planned trials (no run yet: see ``fill_slots``)."""

    def get_sweep(self, sweep_id: int) -> SweepRecord:
        """One sweep by id."""

    def list_sweeps(
        self, *, limit: int | None = None, archived: bool | None = False, offset: int = 0
    ) -> list[SweepRecord]:
        """Sweeps, newest first, past ``offset`` (``archived`` False: not archived; None: all)."""

    def count_sweeps(self, *, archived: bool | None = False) -> int:
        """How many sweeps ``list_sweeps`` would list without a limit."""

    def list_sweep_trials(self, sweep_id: int) -> list[SweepTrial]:
        """A sweep's planned trials by number, started or not."""

    def running_sweep_ids(self) -> list[int]:
        """Ids of the sweeps that may still start trials."""

    def fill_slots(self, sweep_id: int) -> list[RunRecord]:
        """Create the next trials' runs (QUEUED) for every free slot, in one transaction."""

    def take_unpublished_trials(self, sweep_id: int) -> list[RunRecord]:
        """The sweep's never-published trials, marked published now for the caller to publish."""

    def cancel_sweep(self, sweep_id: int) -> SweepRecord:
        """Stop a sweep: no new trial, QUEUED trials CANCELLED, RUNNING ones flagged."""

    def decide_rung(
        self,
        *,
        sweep_id: int,
        rung_step: int,
        run_id: int,
        attempt: int,
        trial: int,
        objective: float,
        maximize: bool,
        reduction_factor: int,
        lease_ttl_s: float,
    ) -> RungDecision:
        """Record a trial's objective at a rung and decide, once, whether it continues."""

    def decide_rungs(
        self,
        *,
        sweep_id: int,
        rung_step: int,
        entries: Sequence[RungEntry],
        maximize: bool,
        reduction_factor: int,
        lease_ttl_s: float,
    ) -> list[RungDecision | StaleAttemptError]:
        """Record a pack's objectives at a rung and decide each among all of them, at once."""

    def list_rung_results(self, sweep_id: int) -> list[RungResult]:
        """Every rung result of a sweep, by rung then time of decision."""


class ReconciliationOperations(Protocol):
    """What the reconciler and a takeover do to jobs whose worker is gone.

    Code: ``storage/reconciliation.py``.
    """

    def runs_to_redispatch(
        self,
        *,
        redispatch_after_s: float,
        now: datetime | None = None,
        limit: int | None = None,
    ) -> list[JobRecord]:
        """Jobs (training runs, then evaluation jobs) whose message must be published again."""

    def requeue_expired(
        self, run_id: int, *, now: datetime | None = None, kind: JobKind = JobKind.TRAIN
    ) -> JobRecord:
        """Move on a RUNNING job whose lease expired: QUEUED, or CANCELLED or FAILED at its end."""

    def expire_lease(
        self,
        run_id: int,
        attempt: int,
        *,
        now: datetime | None = None,
        kind: JobKind = JobKind.TRAIN,
    ) -> bool:
        """End ``attempt``'s lease now, because its owner is known to be dead."""


class DashboardReadOperations(Protocol):
    """Reads shaped for the web dashboard's pages (one query per page, not per run).

    Code: ``storage/dashboard_reads.py``.
    """

    def page_training_runs(
        self,
        *,
        statuses: Sequence[RunStatus] = (),
        tags: Mapping[str, str] | None = None,
        sweep_id: int | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> RunPage:
        """One page of training runs matching every filter, newest first, with the total."""

    def latest_metrics(self, run_ids: Sequence[int]) -> dict[int, LatestMetrics]:
        """Each run's newest metric chunk, reduced to its mean (runs without metrics are absent)."""

    def latest_validation_accuracy(self, run_ids: Sequence[int]) -> dict[int, float | None]:
        """Each run's validation accuracy at its newest checkpoint (runs without one are absent)."""

    def read_metric_curve(
        self, run_id: int, *, max_points: int = DEFAULT_MAX_POINTS
    ) -> MetricCurve:
        """A run's per-step metrics averaged into at most ``max_points`` buckets of steps."""


class DatasetOperations(Protocol):
    """Dataset versions: canonical bytes in checksummed chunks under their content hash, a name
    and number for people, and the runs that train on them (``runs.data_sha256``, set from the
    run's config when it is created).

    Code: ``storage/dataset_store.py`` (look-ups in ``storage/dataset_rows.py``, names and
    references in ``storage/dataset_refs.py``).
    """

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
        chunks: Iterable[tuple[int, bytes, str]],
    ) -> tuple[DatasetVersionRecord, bool]:
        """Store a version as ``name``'s next number in one transaction; an existing hash: no-op."""

    def find_dataset_version(self, ref: str) -> DatasetVersionRecord:
        """The version ``NAME`` (newest), ``NAME@N`` or a hash (unique prefix of 8+) names."""

    def get_dataset_version(self, sha256: str) -> DatasetVersionRecord:
        """The version stored under a content hash."""

    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersionRecord]:
        """Every version (or every version of ``name``), by name then number."""

    def read_dataset_chunks(self, sha256: str) -> list[tuple[int, bytes, str]]:
        """A version's ``(index, bytes, sha256)`` chunks in order, as stored."""

    def dataset_usage(self, sha256: str) -> DatasetUsage:
        """The training runs on a version, and their evaluation jobs."""

    def delete_dataset_version(self, sha256: str, *, force: bool) -> DatasetUsage:
        """Remove a version; refused while runs refer to it unless ``force``."""


class MetricsReadOperations(Protocol):
    """The numbers ``trainq exporter`` gives Prometheus, read at scrape time.

    Code: ``storage/metrics_reads.py``.
    """

    def read_metrics_snapshot(
        self,
        *,
        wait_bounds_s: Sequence[float] = WAIT_BUCKETS_S,
        now: datetime | None = None,
    ) -> MetricsSnapshot:
        """Jobs by queue and status, queue waits, attempt outcomes, running runs' pace."""


class StoreContract(
    RunOperations,
    RunManagementOperations,
    AttemptOperations,
    MetricOperations,
    CheckpointOperations,
    RetentionOperations,
    EvaluationOperations,
    SweepOperations,
    ReconciliationOperations,
    DashboardReadOperations,
    DatasetOperations,
    MetricsReadOperations,
    Protocol,
):
    """Everything trainq's store offers; :class:`storage.Repository` implements it."""
