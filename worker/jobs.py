"""The body of every job: claim, run, record, finish.

The Celery tasks (``worker.cluster.tasks``) and the embedded mode (``trainq train`` with no broker)
both call these functions, so the two modes share one code path and differ only in transport.
Nothing here knows Celery. TensorFlow is imported inside the functions, in the process that
trains.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage import Repository, Settings
from storage.records import ChunkAck, JobKind, MetricChunk, RunRecord, RunStatus
from worker.claimed_job import run_claimed
from worker.config import Device, TrainConfig, parse_train_config
from worker.lease import LeaseHeartbeat, LeaseLostInOutageError
from worker.outage import hand_back_after_outage
from worker.resume_point import newest_intact_checkpoint
from worker.start_up import StartUp
from worker.training.compile_cache import CompileCacheUnusableError
from worker.training.trainer import InThisProcess
from worker.training.trainer_process import TrainerProcessLostError
from worker.training_data import load_training_data
from worker.trial_hooks import CheckpointHooks

if TYPE_CHECKING:
    from worker.rung_cohort import RungCohort
    from worker.training import ChunkReport, TrainingState
    from worker.training.trainer import Trainer

logger = logging.getLogger(__name__)


def _never() -> bool:
    return False


def lease_owner_name(host: str, pid: int, label: str) -> str:
    """The lease owner a job process writes: its host, its process id and a per-delivery label.

    The worker's main process rebuilds it for a job process that died, to release that lease.
    """
    return f"{host}:{pid}:{label}"


@dataclass(frozen=True)
class JobContext:
    """Who runs a job and with what settings."""

    repository: Repository
    settings: Settings
    owner: str  # the lease owner: see lease_owner_name
    host: str
    #: Asked at every chunk boundary: True stops the job there, checkpointed, and hands the run
    #: back to the queue without spending its attempt (the worker is shutting down).
    hand_back_requested: Callable[[], bool] = _never
    #: Trains the job's steps: a seat in a pack of trials (``worker.pack_job``) or a trainer
    #: process (``worker.training.trainer_process``). None: ``train`` in this process.
    trainer: Trainer | None = None
    #: Decides the rungs of a pack's trials together (``worker.rung_cohort``); None: alone.
    rung_cohort: RungCohort | None = None

    @classmethod
    def for_this_process(
        cls,
        repository: Repository,
        settings: Settings,
        label: str,
        *,
        hand_back_requested: Callable[[], bool] = _never,
    ) -> JobContext:
        """A context naming this host and process as the lease owner."""
        host = socket.gethostname()
        owner = lease_owner_name(host, os.getpid(), label)
        return cls(repository, settings, owner, host, hand_back_requested)


def execute_job(
    context: JobContext, run_id: int, *, claimed: RunRecord | None = None
) -> RunRecord | None:
    """Claim and train run ``run_id`` (evaluation jobs: ``worker.evaluation_job``); ``claimed``:
    the run as the caller already claimed it for this job (a pack's trials, ``worker.pack_job``).

    Returns:
        The finished record; a QUEUED record when the job was handed back (see
        ``JobContext.hand_back_requested``: the caller publishes it again); or None when the job
        could not be claimed (another attempt owns it, it already finished, or it was
        cancelled): a duplicate delivery is a no-op. What follows a sweep trial's job (publishing
        the trial that took its slot) is the caller's: ``worker.cluster.tasks`` on a cluster;
        embedded, the sweep runner takes the next trial itself.
    """
    outcome = run_claimed(
        context,
        run_id,
        JobKind.TRAIN,
        claim=context.repository.claim_run if claimed is None else lambda *_, **__: claimed,
        work=lambda run, heartbeat: _train(context, run, heartbeat),
        settle=lambda run, outcome: _settle(context, run, outcome),
        fail=lambda run, error: _finish(context, run, RunStatus.FAILED, error=error),
    )
    assert outcome is None or isinstance(outcome, RunRecord)
    return outcome


@dataclass(frozen=True, eq=False)  # holds arrays
class _StoppedByOutage:
    """Training stopped because the lease ran out while the database was unreachable."""

    heartbeat: LeaseHeartbeat
    state: TrainingState  # where training stopped, kept in memory
    held_back: Callable[[], object] | None  # the chunk write the outage stopped, if any


def _settle(
    context: JobContext, run: RunRecord, outcome: RunRecord | TrainingState | _StoppedByOutage
) -> RunRecord | None:
    """The finished record, or the run handed back at the state training stopped at."""
    if isinstance(outcome, RunRecord):
        return outcome
    if isinstance(outcome, _StoppedByOutage):
        outage_hand_back = hand_back_after_outage(
            context,
            JobKind.TRAIN,
            run.id,
            run.attempt,
            outcome.heartbeat,
            held_back=outcome.held_back,
            checkpoint=outcome.state.arrays,
            checkpoint_step=outcome.state.step,
        )
        assert outage_hand_back is None or isinstance(outage_hand_back, RunRecord)
        return outage_hand_back
    # Handed back only now that the heartbeat has stopped: the release is this attempt's
    # last write, so the attempt number it gives back can safely be claimed again.
    handed_back = context.repository.hand_back_run(
        run.id,
        run.attempt,
        owner=context.owner,
        checkpoint=outcome.arrays if outcome.step > 0 else None,
        checkpoint_step=outcome.step,
    )
    logger.info(
        "run %s: handed back at step %s (%s)", run.id, outcome.step, handed_back.status.value
    )
    assert isinstance(handed_back, RunRecord)
    return handed_back


def _train(
    context: JobContext, run: RunRecord, heartbeat: LeaseHeartbeat
) -> RunRecord | TrainingState | _StoppedByOutage:
    """Train the claimed run; returns its finished record, or the state to hand back at."""
    started = time.perf_counter()  # the attempt's wall time includes importing TensorFlow
    from worker.run_summary import summarize
    from worker.training import TrainingState  # NumPy only

    config = _with_effective_device(parse_train_config(run.config), context.settings)
    repository = context.repository
    checkpoint = newest_intact_checkpoint(repository, run.id)
    resume = (
        TrainingState(step=checkpoint.info.step, arrays=checkpoint.arrays) if checkpoint else None
    )
    if resume is not None:
        logger.info("run %s: resuming from checkpoint at step %s", run.id, resume.step)
    data = load_training_data(config, context.settings, repository)  # the recorded version
    loaded_at = time.perf_counter()
    # TensorFlow only now, and only where it trains: where it is importing in a thread (an
    # embedded `trainq train`, see worker.training.start_importing), the first call below waits
    # for that import, and the checkpoint and the data above load meanwhile instead of after it.
    from worker.training import xla_choice

    xla_choice.use_compile_cache(context.settings.home_dir)  # unless TensorFlow is in already
    trainer = context.trainer or InThisProcess()
    start_up = StartUp(run.id, started, loaded_at, time.perf_counter(), trainer.traces_so_far())
    hooks = CheckpointHooks(context, run, config, data)  # validation metrics, ASHA rungs
    if resume is not None and hooks.at_checkpoint(resume):  # killed right after its rung
        return hooks.finish_pruned(resume, None, wall_s=time.perf_counter() - started)
    if context.hand_back_requested():  # asked while starting up: do not compile and train first
        return resume or TrainingState(step=0, arrays={})

    held_back: list[Callable[[], object]] = []  # a chunk write a long database outage stopped

    def record(report: ChunkReport) -> None:
        # The attempt's first chunk names the device, so a running run shows where it runs.
        device = None if start_up.reported else report.device
        start_up.first_chunk_done(report.first_step + len(report.loss) - 1, trainer.traces_so_far())
        chunk = MetricChunk(report.first_step, report.loss, report.accuracy)
        state = report.state  # set when the chunk ends at a checkpoint
        validation = hooks.validate(state) if state is not None else None

        def write() -> ChunkAck:
            return repository.record_chunk(
                run.id,
                run.attempt,
                chunk,
                lease_ttl_s=context.settings.lease_ttl_s,
                checkpoint=state.arrays if state is not None else None,
                validation=(validation.loss, validation.accuracy) if validation else None,
                device=device,
            )

        try:
            ack = heartbeat.write(write)  # waits out an outage for as long as the lease lasts
        except LeaseLostInOutageError:
            held_back.append(write)  # made before the hand-back, once the database is back
            return
        if ack.cancel_requested:
            heartbeat.stop_requested.set()
        if state is not None and hooks.decide(state, validation):
            heartbeat.stop_requested.set()

    try:
        result = trainer.train(
            config,
            data,
            resume_from=resume,
            on_chunk=record,
            should_stop=lambda: (
                heartbeat.stop_requested.is_set()
                or heartbeat.lease_lost.is_set()
                or context.hand_back_requested()
            ),
        )
    except (CompileCacheUnusableError, TrainerProcessLostError) as exc:
        # Not the run's fault: a new process trains it.
        logger.warning("run %s: %s", run.id, exc)
        return _state_to_hand_back(repository, run.id, resume)
    if config.pack == 1:  # the figures choose between the two paths of a run alone
        xla_choice.record_run(
            context.settings.home_dir,
            config,
            result,
            traced=trainer.traces_so_far() > start_up.traces_before,
            data=data.data_shape,
        )
    if heartbeat.lease_lost.is_set():
        return _StoppedByOutage(heartbeat, result.state, held_back[0] if held_back else None)
    if hooks.pruned_at_step is not None:
        return hooks.finish_pruned(result.state, result, wall_s=time.perf_counter() - started)
    if not result.completed:
        if not heartbeat.stop_requested.is_set():
            return result.state  # stopped for a hand-back, at the end of a recorded chunk
        return _finish(context, run, RunStatus.CANCELLED, device=result.device)

    def finish() -> RunRecord:
        summary = summarize(repository, run.id, result, wall_s=time.perf_counter() - started)
        return repository.finish_run(
            run.id,
            run.attempt,
            RunStatus.SUCCEEDED,
            summary=summary.to_json(),
            final_weights=result.state.arrays,
            device=result.device,
        )

    try:
        return heartbeat.write(finish)
    except LeaseLostInOutageError:  # every chunk is recorded: hand back at the last step
        return _StoppedByOutage(heartbeat, result.state, None)


def _state_to_hand_back(
    repository: Repository, run_id: int, resume: TrainingState | None
) -> TrainingState:
    """Where a run stopped mid-way hands back from: its newest checkpoint (chunks recorded after
    it are recorded again, idempotently), else the state it resumed from, else its start."""
    from worker.training import TrainingState

    checkpoint = newest_intact_checkpoint(repository, run_id)
    if checkpoint is not None:
        return TrainingState(step=checkpoint.info.step, arrays=checkpoint.arrays)
    return resume or TrainingState(step=0, arrays={})


def effective_device(requested: Device, settings: Settings) -> Device:
    """The one decision of where a job computes: what the job asked for, unless it left that to
    ``auto`` and its worker was started with ``--device``."""
    if requested is Device.AUTO:
        return Device(settings.worker_device)
    return requested


def _with_effective_device(config: TrainConfig, settings: Settings) -> TrainConfig:
    device = effective_device(config.device, settings)
    if device is not config.device:
        return config.model_copy(update={"device": device})
    return config


def _finish(
    context: JobContext,
    run: RunRecord,
    status: RunStatus,
    *,
    error: str | None = None,
    device: str | None = None,
) -> RunRecord:
    return context.repository.finish_run(run.id, run.attempt, status, error=error, device=device)


def fail_timed_out(context: JobContext, run_id: int, limit_s: float) -> None:
    """Mark a run FAILED because it exceeded the task time limit (only if this process owns it)."""
    run = context.repository.get_run(run_id)
    if run.status is RunStatus.RUNNING and run.lease_owner == context.owner:
        _finish(
            context, run, RunStatus.FAILED, error=f"exceeded the {limit_s:.0f} s task time limit"
        )
