"""A packed sweep trial's job: it takes its QUEUED pack-mates along and trains them together.

When the job of a trial whose ``pack`` is P > 1 starts, it claims its own trial, then up to P-1
other QUEUED trials of the same sweep that share its batches (``worker.training.pack.pack_key``)
and resume from the same step (fresh trials: 0), in trial order, all before anything trains (a
trial another worker's pack claimed meanwhile is skipped, and the next one taken). Each runs
through :func:`worker.jobs.execute_job` in a thread of its own, exactly as a job of its own
would run: its lease heartbeat, fenced chunk writes, validation, cancel, hand-back, failure.
Shared are the ``train`` call (every run's thread sits in one
:class:`~worker.training.pack.Pack`, which this thread drives) and the ASHA decisions at each
rung, taken for all seats at once (:class:`~worker.rung_cohort.RungCohort`). A mate's own
message, delivered later, finds the run claimed or finished and is a no-op, as any duplicate
delivery is.

Nothing of the pack is stored beyond each run's ``pack`` width: after a kill each trial resumes
from its own newest checkpoint, with whichever mates are QUEUED with it then, or alone, at the
same width and so with the same numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass

from storage import TrainqError
from storage.records import RunRecord, RunStatus
from worker.config import parse_train_config
from worker.errors import InvalidConfigError
from worker.jobs import JobContext, execute_job
from worker.pack_plan import pack_key
from worker.resume_point import resume_step
from worker.rung_cohort import RungCohort

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackOutcome:
    """How a trial's job and its mates' ended (``execute_job``'s result for each)."""

    run: RunRecord | None  # the trial the job was for
    mates: tuple[RunRecord, ...]  # the mates it trained and could claim, as they ended


def execute_training(context: JobContext, run_id: int) -> PackOutcome:
    """Run ``run_id``'s training job, in a pack with its QUEUED mates when its ``pack`` > 1.

    Raises:
        What ``execute_job`` raises for ``run_id`` itself; a mate's failure is its own.
    """
    packing = _pack_of(context, run_id)
    if packing is None:
        return PackOutcome(execute_job(context, run_id), ())
    width, candidates = packing
    claimed = _claim_pack(context, run_id, width, candidates)
    if claimed is None:
        logger.info("run %s: not claimable (finished, cancelled or owned elsewhere); no-op", run_id)
        return PackOutcome(None, ())
    run, *mates = claimed
    if not mates:
        return PackOutcome(execute_job(context, run_id, claimed=run), ())
    from worker.training.pack import Pack  # TensorFlow: this process trains

    cohort = RungCohort(context.repository, context.settings.lease_ttl_s)
    pack = Pack(width, before_delivery=cohort.before_delivery)
    # Seats in trial order, whichever trial's job formed the pack: the trials' callbacks run in
    # seat order, the same on every rerun.
    members = [member.id for member in sorted(claimed, key=lambda r: r.trial or 0)]
    records = {record.id: record for record in claimed}
    results: dict[int, RunRecord | None] = {}
    failures: dict[int, BaseException] = {}

    def run_member(member: int, seat_context: JobContext) -> None:
        try:
            results[member] = execute_job(seat_context, member, claimed=records[member])
        except BaseException as error:  # re-raised below for the job's own trial
            failures[member] = error
        finally:
            seats[member].withdraw()

    seats = {member: pack.seat(run_id=member) for member in members}
    threads = []
    for member in members:
        seat = seats[member]
        seat_context = dataclasses.replace(context, trainer=seat, rung_cohort=cohort)
        thread = threading.Thread(
            target=run_member, args=(member, seat_context), name=f"trainq-pack-{member}"
        )
        thread.start()
        threads.append(thread)
    logger.info(
        "run %s: training in a pack of %s with runs %s", run_id, width, [m.id for m in mates]
    )
    try:
        pack.run()
    finally:
        for thread in threads:
            thread.join()
    for member, error in failures.items():
        if member != run_id:
            logger.error("run %s (in run %s's pack): %s", member, run_id, error)
    if run_id in failures:
        raise failures[run_id]
    ended = tuple(record for mate in mates if (record := results.get(mate.id)) is not None)
    return PackOutcome(results.get(run_id), ended)


def _claim_pack(
    context: JobContext, run_id: int, width: int, candidates: list[RunRecord]
) -> list[RunRecord] | None:
    """Claim ``run_id``, then candidates in order until the pack is full: the claimed runs, the
    job's own first; None when the job's own run is not claimable (another pack took it).

    All in this thread before anything trains, and down the whole list: two workers forming
    packs at once each fill theirs with whatever the other did not take (picking a list first
    and claiming later, two packs of 32 once split the first 32 trials between them while the
    other 32 waited for a free worker).
    """

    def claim(member: int) -> RunRecord | None:
        return context.repository.claim_run(
            member,
            owner=context.owner,
            worker_host=context.host,
            lease_ttl_s=context.settings.lease_ttl_s,
        )

    own = claim(run_id)
    if own is None:
        return None
    members = [own]
    for candidate in candidates:
        if len(members) >= width:
            break
        try:
            mate = claim(candidate.id)
        except TrainqError as error:  # the pack goes on with the mates it has
            logger.warning(
                "run %s: could not claim pack-mate run %s: %s", run_id, candidate.id, error
            )
            break
        if mate is not None:
            members.append(mate)
    return members


def _pack_of(context: JobContext, run_id: int) -> tuple[int, list[RunRecord]] | None:
    """``run_id``'s pack width and the other QUEUED trials that may share its pack, in trial
    order; None when it trains alone."""
    repository = context.repository
    run = repository.get_run(run_id)
    if run.sweep_id is None or run.status is not RunStatus.QUEUED:
        return None
    try:
        config = parse_train_config(run.config)
    except InvalidConfigError:
        return None  # execute_job records why
    if config.pack <= 1:
        return None
    key = pack_key(config)
    step = resume_step(repository, run)
    mates: list[RunRecord] = []
    queued = repository.list_runs(sweep_id=run.sweep_id, statuses=[RunStatus.QUEUED])
    for other in sorted(queued, key=lambda r: r.trial or 0):
        if other.id == run_id:
            continue
        try:
            shares = pack_key(parse_train_config(other.config)) == key
        except InvalidConfigError:
            continue
        if shares and resume_step(repository, other) == step:
            mates.append(other)
    return (config.pack, mates) if mates else None
