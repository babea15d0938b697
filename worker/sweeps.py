"""Starting and advancing sweeps: plain functions the CLI, the jobs and the reconciler share.

``submit_sweep`` (called by ``Client.submit_sweep``, which the CLI uses) takes a parsed sweep
file, validates and plans every trial, stores the sweep, and (in a cluster) starts the first
``max_concurrent`` trials. The transaction that ends a trial creates the next one
(``storage.trial_slots``); the Celery shell's ``trial_ended`` then publishes it, and
``advance_sweep`` (the sweep's start, ``sweep resume``, the reconciler) fills free slots and
publishes what is unpublished. No central process drives a sweep.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from storage.sweep_records import PlannedTrial, SweepRecord
from storage.validation import MAX_SEED
from worker.data import IMAGE_PIXELS, NUM_CLASSES
from worker.pack_plan import PACK_MEMORY_BUDGET_BYTES, resolve_pack
from worker.queues import queue_for
from worker.sweep_plan import plan_trials
from worker.sweep_spec import SweepSpec, parse_sweep_spec
from worker.training.xla_choice import steps_per_call

if TYPE_CHECKING:
    from storage import Repository  # types only: importing it loads SQLAlchemy
    from storage.records import RunRecord
    from worker.dispatch import JobPublisher

logger = logging.getLogger(__name__)


def submit_sweep(
    repository: Repository,
    data: dict[str, Any] | SweepSpec,
    *,
    max_attempts: int,
    dispatcher: JobPublisher | None = None,
    workers: int = 1,
    pack_memory_bytes: int = PACK_MEMORY_BUDGET_BYTES,
) -> SweepRecord:
    """Validate a sweep file's data, plan and store its trials, and start the first ones.

    Args:
        repository: where the sweep is stored.
        data: the loaded file (``worker.sweep_file.read_sweep_file``) or a parsed spec.
        max_attempts: worker losses each trial tolerates.
        dispatcher: publishes the first trials (cluster); None in embedded mode, where
            ``worker.sweep_runner.run_sweep_here`` runs them.
        workers: the workers serving the trials' queue, for ``pack: auto``
            (``worker.pack_plan``).
        pack_memory_bytes: the most memory one pack may take (``TRAINQ_PACK_MEMORY_BYTES``).

    Returns:
        The stored sweep (its id names it in every ``trainq sweep`` command).

    Raises:
        InvalidConfigError: naming the offending key; nothing was stored.
    """
    spec = data if isinstance(data, SweepSpec) else parse_spec(data)
    spec = with_pack_decided(spec, workers, pack_memory_bytes)
    planned = [
        PlannedTrial(
            params=params,
            config=config.model_dump(mode="json"),
            seed=config.seed_value,
            queue=queue_for(config),
        )
        for params, config in plan_trials(spec)
    ]
    sweep = repository.create_sweep(
        name=spec.name,
        spec=spec.to_json(),
        trials=planned,
        max_concurrent=spec.max_concurrent,
        max_attempts=max_attempts,
    )
    if dispatcher is not None:
        advance_sweep(repository, sweep.id, dispatcher)
    return sweep


def with_pack_decided(
    spec: SweepSpec, workers: int, budget_bytes: int = PACK_MEMORY_BUDGET_BYTES
) -> SweepSpec:
    """``spec`` with its pack width decided (``auto`` resolved; stored as a number)."""
    first = plan_trials(replace(spec, run_cap=1))[0][1]
    dims = spec.dataset
    width = resolve_pack(
        spec.pack,
        max_concurrent=spec.max_concurrent,
        workers=workers,
        trials=spec.run_cap,
        device=first.device,
        swept=frozenset(
            parameter.name
            for parameter in spec.parameters
            if parameter.distribution is not None or len(parameter.values or ()) > 1
        ),
        features=dims.features if dims is not None else IMAGE_PIXELS,
        classes=dims.classes if dims is not None else NUM_CLASSES,
        call_steps=steps_per_call(first.chunk_steps, first.batch_size),
        budget_bytes=budget_bytes,
    )
    return replace(spec, pack=width)


def parse_spec(data: dict[str, Any]) -> SweepSpec:
    """Validate a sweep file's data, drawing (and so recording) a seed when it gives none."""
    return parse_sweep_spec(data, default_seed=secrets.randbelow(MAX_SEED + 1))


def advance_sweep(
    repository: Repository, sweep_id: int, dispatcher: JobPublisher | None
) -> list[RunRecord]:
    """Start trials in the sweep's free slots and publish every trial never published (when a
    dispatcher is given).

    Returns:
        The trials created now, or with a dispatcher the trials published now.
    """
    created = repository.fill_slots(sweep_id)
    for run in created:
        logger.info("sweep %s: trial %s started as run %s", sweep_id, run.trial, run.id)
    if dispatcher is None:
        return created
    return publish_new_trials(repository, sweep_id, dispatcher)


def publish_new_trials(
    repository: Repository, sweep_id: int, dispatcher: JobPublisher
) -> list[RunRecord]:
    """Publish the sweep's trials that were created but never published (each by one caller).

    A publish that fails leaves the trial QUEUED; the reconciler publishes it again.
    """
    from worker.errors import BrokerUnavailableError

    taken = repository.take_unpublished_trials(sweep_id)
    for run in taken:
        try:
            dispatcher.publish(repository, run)
        except BrokerUnavailableError as exc:
            logger.warning("sweep %s: %s", sweep_id, exc)
    return taken
