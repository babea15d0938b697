"""The reconciler: the database says which jobs should be queued; make the broker agree.

It lives in every worker's main process (a daemon thread started when the worker is ready). The
main process is long-lived, never imports TensorFlow, and exists wherever jobs can run, so lost
messages are found without a separate service to deploy or forget; several copies are harmless
because claims are conditional and PostgreSQL candidates are locked with SKIP LOCKED.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from storage import Repository, Settings
from storage.errors import DatabaseUnavailableError, TrainqError
from storage.records import RunStatus
from worker.cluster.publisher import Dispatcher, publisher_for
from worker.sweeps import advance_sweep

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileReport:
    """What one pass did."""

    republished: int
    requeued: int
    failed: int


def reconcile_once(
    repository: Repository,
    dispatcher: Dispatcher,
    settings: Settings,
    *,
    judge_leases: bool = True,
) -> ReconcileReport:
    """One pass: requeue jobs (training runs and evaluation jobs) whose worker was lost, publish
    jobs whose message was lost.

    With ``judge_leases`` off, RUNNING jobs are left alone however old their lease: right after a
    database outage their holders could not renew, and get a lease's time to come back.

    A QUEUED run that was published before is only published again when its queue is empty:
    otherwise its message is most likely still waiting, and copies would pile up behind a backlog.
    A duplicate that slips through is harmless: the second delivery cannot claim the run.
    """
    republished = requeued = failed = 0
    depths = dispatcher.queue_depths()
    for candidate in repository.runs_to_redispatch(redispatch_after_s=settings.redispatch_after_s):
        run = candidate
        if run.status is RunStatus.RUNNING:
            if not judge_leases:
                continue
            run = repository.requeue_expired(run.id, kind=run.kind)
            if run.status is RunStatus.FAILED:
                failed += 1
                logger.error("%s: %s", run.label, run.error)
                continue
            if run.status is not RunStatus.QUEUED:
                continue
            requeued += 1
        elif run.published_at is not None and depths.get(run.queue, 0) > 0:
            continue
        dispatcher.publish(repository, run)
        republished += 1
        logger.warning("%s: published again (attempt so far %s)", run.label, run.attempt)
    for sweep_id in repository.running_sweep_ids():  # slots freed by trials that died ending
        republished += len(advance_sweep(repository, sweep_id, dispatcher))
    return ReconcileReport(republished, requeued, failed)


class ReconcilerThread(threading.Thread):
    """Runs :func:`reconcile_once` every ``settings.reconcile_every_s`` until stopped."""

    def __init__(self, repository: Repository, settings: Settings) -> None:
        super().__init__(name="trainq-reconciler", daemon=True)
        self._repository = repository
        self._settings = settings
        self._stopped = threading.Event()

    def run(self) -> None:
        """Loop until :meth:`stop`; a failing pass is logged and retried next period.

        After a pass found the database unreachable, expired leases are not judged until one
        lease TTL after it answered again: an outage is not the runs' fault, and the jobs that
        held them waited it out too and are handing them back (``worker.outage``) without
        spending their attempt; requeueing them first would spend it.
        """
        dispatcher = publisher_for(self._settings)
        judge_leases_from = 0.0  # time.monotonic()
        while True:
            try:
                reconcile_once(
                    self._repository,
                    dispatcher,
                    self._settings,
                    judge_leases=time.monotonic() >= judge_leases_from,
                )
            except DatabaseUnavailableError as exc:
                judge_leases_from = math.inf
                logger.warning("reconciler pass failed, retrying later: %s", exc)
            except TrainqError as exc:
                logger.warning("reconciler pass failed, retrying later: %s", exc)
            else:
                if judge_leases_from == math.inf:  # the first pass since the database came back
                    judge_leases_from = time.monotonic() + self._settings.lease_ttl_s
            if self._stopped.wait(self._settings.reconcile_every_s):
                break

    def stop(self) -> None:
        """Ask the loop to end after the current pass."""
        self._stopped.set()
