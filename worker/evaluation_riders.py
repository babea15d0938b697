"""Pack-mates of an evaluation job: other queued jobs on the same images, claimed to ride along.

A job that evaluates one checkpoint (``worker.evaluation_job``) takes other QUEUED evaluation
jobs with it when they evaluate on exactly its images (same split, same dataset version, and for
``val`` the same held-out examples), so that one pass over the split evaluates all of their
weights at once (``worker.packed_evaluation``). Each rider stays an ordinary job with every
guarantee: it is claimed with the same conditional UPDATE (a rider another worker took first is
simply left out), keeps its own lease through its own heartbeat, writes its own ``evaluations``
row fenced on its own attempt, and fails alone when its checkpoint is missing, damaged or of
another width. Its message, delivered later, finds it claimed or finished and is a no-op. If the
shared pass itself fails, every rider not yet settled is handed back (QUEUED, attempt unspent)
for a later claim; if the process dies, the riders' leases expire and the reconciler requeues
them like any job whose worker was lost.

Who may ride: on a cluster, any QUEUED job on the lead's queue (``mates`` None: read from the
database); embedded, only the jobs dispatched together with the lead (``mates``), because another
process's queued jobs are followed by that process, which must see them finish in its own run.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from storage import Repository
from storage.errors import (
    CheckpointNotFoundError,
    DatabaseUnavailableError,
    StaleAttemptError,
    StorageError,
)
from storage.records import Checkpoint, EvaluationJobRecord, JobKind, RunStatus
from worker.claimed_job import DETERMINISTIC_ERRORS
from worker.config import Split, TrainConfig, parse_train_config
from worker.errors import DeterministicJobError, InvalidConfigError
from worker.jobs import JobContext
from worker.lease import LeaseHeartbeat, LeaseLostInOutageError
from worker.outage import hand_back_after_outage

logger = logging.getLogger(__name__)

#: Queued jobs read as candidates at most (the newest ones); more wait for a pack of their own.
CANDIDATE_LIMIT = 4096
#: Riders of one lead at most: each holds a heartbeat thread and its weights until the pass ends.
MAX_RIDERS = 255

#: The weights a pass needs of a checkpoint (its velocities are left behind).
_EVALUATED = ("W", "b")

#: Stores a rider's result: its job and checkpoint step in, the finished job out.
SaveResult = Callable[[EvaluationJobRecord, int], EvaluationJobRecord]


def images_key(config: TrainConfig, split: Split) -> tuple[object, ...]:
    """What decides the images a job of a run trained with ``config`` evaluates on ``split``."""
    if split is Split.VAL:  # the run's own held-out examples
        return (config.data_sha256, split.value, config.val_seed, config.val_size)
    return (config.data_sha256, split.value)  # None: the built-in Fashion-MNIST


def checkpoint_to_evaluate(repository: Repository, job: EvaluationJobRecord) -> Checkpoint:
    """The checkpoint ``job`` names (the newest one for a job queued before migration 0003).

    Raises:
        DeterministicJobError: the run has no such checkpoint (any more).
    """
    try:
        if job.checkpoint_step is None:
            checkpoint = repository.latest_checkpoint(job.run_id)
            if checkpoint is None:
                raise CheckpointNotFoundError(f"run {job.run_id} has no checkpoint yet")
            return checkpoint
        return repository.get_checkpoint(job.run_id, job.checkpoint_step)
    except CheckpointNotFoundError as exc:
        raise DeterministicJobError(str(exc)) from exc


@dataclass(eq=False)
class Rider:
    """A claimed evaluation job riding along with a lead job's pass."""

    job: EvaluationJobRecord
    heartbeat: LeaseHeartbeat
    step: int = 0  # the checkpoint evaluated
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)
    settled: bool = False


class Riders:
    """The riders of one lead job, claimed on entry; those not settled are handed back on exit."""

    def __init__(
        self,
        context: JobContext,
        lead: EvaluationJobRecord,
        key: tuple[object, ...],
        *,
        limit: int,
        mates: Sequence[int] | None,
    ) -> None:
        self._context = context
        self._lead = lead
        self._key = key
        self._limit = min(limit, MAX_RIDERS)
        self._mates = None if mates is None else frozenset(mates)
        #: The riders whose weights are loaded, in the order they were claimed.
        self.ready: list[Rider] = []

    def __enter__(self) -> Riders:
        try:
            for job in self._candidates():
                if len(self.ready) >= self._limit:
                    break
                rider = self._claim(job)
                if rider is not None and self._load(rider):
                    self.ready.append(rider)
        except BaseException:
            self._hand_back_unsettled()
            raise
        if self.ready:
            logger.info(
                "eval %s: evaluating with %s other job(s) in one pass: %s",
                self._lead.id,
                len(self.ready),
                ", ".join(f"eval {rider.job.id}" for rider in self.ready),
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self._hand_back_unsettled()

    def settle(self, rider: Rider, outcome: object, save: SaveResult | None = None) -> None:
        """Store ``rider``'s result (``save`` writes its row) or fail it: ``outcome`` an error.

        Mirrors ``worker.claimed_job.run_claimed``: a superseded attempt stops, a deterministic
        error fails the job, an outage past the lease hands it back unspent.
        """
        name = f"eval {rider.job.id}"
        rider.settled = True
        try:
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                assert save is not None
                rider.heartbeat.write(lambda: save(rider.job, rider.step))
            finally:
                rider.heartbeat.__exit__(None, None, None)
        except StaleAttemptError:
            logger.warning("%s: attempt %s was superseded; stopping", name, rider.job.attempt)
        except DETERMINISTIC_ERRORS as exc:
            logger.error("%s failed: %s", name, exc)
            self._fail(rider, str(exc))
        except (LeaseLostInOutageError, DatabaseUnavailableError):
            hand_back_after_outage(
                self._context, JobKind.EVAL, rider.job.id, rider.job.attempt, rider.heartbeat
            )

    def _candidates(self) -> Iterator[EvaluationJobRecord]:
        """Queued jobs on the lead's queue and images, oldest first."""
        if self._mates is not None and not self._mates:
            return
        repository = self._context.repository
        queued = repository.list_evaluation_jobs(statuses=[RunStatus.QUEUED], limit=CANDIDATE_LIMIT)
        configs: dict[int, TrainConfig | None] = {}
        for job in sorted(queued, key=lambda found: found.id):
            if job.id == self._lead.id or (self._mates is not None and job.id not in self._mates):
                continue
            if job.queue != self._lead.queue or job.split != self._lead.split:
                continue
            if job.run_id not in configs:
                configs[job.run_id] = self._config_of(job.run_id)
            config = configs[job.run_id]
            if config is not None and images_key(config, Split(job.split)) == self._key:
                yield job

    def _config_of(self, run_id: int) -> TrainConfig | None:
        """The run's config, or None when it cannot be read (its own job reports why)."""
        try:
            return parse_train_config(self._context.repository.get_run(run_id).config)
        except (InvalidConfigError, StorageError):
            return None

    def _claim(self, job: EvaluationJobRecord) -> Rider | None:
        context = self._context
        claimed = context.repository.claim_evaluation_job(
            job.id,
            owner=context.owner,
            worker_host=context.host,
            lease_ttl_s=context.settings.lease_ttl_s,
        )
        if claimed is None:  # taken by another worker, cancelled, or out of attempts
            return None
        logger.info(
            "eval %s: claimed as attempt %s by %s to ride with eval %s",
            claimed.id,
            claimed.attempt,
            context.owner,
            self._lead.id,
        )
        heartbeat = LeaseHeartbeat(
            context.repository,
            claimed.id,
            claimed.attempt,
            context.settings.lease_ttl_s,
            kind=JobKind.EVAL,
        )
        return Rider(job=claimed, heartbeat=heartbeat.__enter__())

    def _load(self, rider: Rider) -> bool:
        """Read the rider's checkpoint; a missing or damaged one fails the rider alone."""
        try:
            checkpoint = checkpoint_to_evaluate(self._context.repository, rider.job)
        except DETERMINISTIC_ERRORS as exc:
            self.settle(rider, exc)
            return False
        except BaseException:
            self._hand_back(rider)
            raise
        rider.step = checkpoint.info.step
        rider.weights = {
            name: array for name, array in checkpoint.arrays.items() if name in _EVALUATED
        }
        return True

    def _fail(self, rider: Rider, error: str) -> None:
        try:
            self._context.repository.finish_evaluation_job(
                rider.job.id, rider.job.attempt, RunStatus.FAILED, error=error
            )
        except StaleAttemptError:
            logger.warning("eval %s: attempt %s was superseded", rider.job.id, rider.job.attempt)

    def _hand_back_unsettled(self) -> None:
        for rider in self.ready:
            if not rider.settled:
                self._hand_back(rider)

    def _hand_back(self, rider: Rider) -> None:
        """Give the rider back unspent: the pass it rode in did not happen."""
        rider.settled = True
        rider.heartbeat.__exit__(None, None, None)
        try:
            self._context.repository.hand_back_run(
                rider.job.id, rider.job.attempt, owner=self._context.owner, kind=JobKind.EVAL
            )
            logger.info("eval %s: handed back (its pass did not run)", rider.job.id)
        except (StaleAttemptError, StorageError) as exc:  # its lease expires; it is requeued
            logger.warning("eval %s: could not hand it back: %s", rider.job.id, exc)
