"""A job process died under a live worker: release its run at once instead of waiting for the lease.

Celery hands a task whose pool process died (SIGKILL, out of memory, a cold shutdown cancelling
it) to :meth:`Request.on_failure` in the worker's main process, which puts the message back in
the queue (``task_reject_on_worker_lost``). Left alone, the requeued message finds the run still
leased to the dead process, is acked as a no-op, and the run waits for its lease to expire and a
reconciler pass. :class:`JobRequest` first releases the dead process's lease (fenced by that
process's lease owner and attempt; the attempt is spent), so the message comes back to a run that
any worker can claim. This runs in the main process, which never imports TensorFlow.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from billiard import einfo
from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError
from celery.exceptions import Terminated
from celery.worker.request import Request

from storage.errors import TrainqError
from storage.records import JobKind, RunStatus
from worker.cluster.publisher import publisher_for, trial_ended
from worker.cluster.services import services
from worker.jobs import lease_owner_name
from worker.queues import EVAL_TASK

logger = logging.getLogger(__name__)

#: How the pool wraps an exception raised in a job process (absent from billiard's type stubs).
_WRAPPED: type[Exception] = einfo.ExceptionWithTraceback  # type: ignore[attr-defined]
#: What Celery reports when the job process is gone rather than the job having failed.
_PROCESS_LOST = (WorkerLostError, Terminated, SystemExit, KeyboardInterrupt)


class JobRequest(Request):
    """Celery's request, plus: a job whose process is lost gives its run back immediately."""

    def on_failure(
        self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False
    ) -> Any:
        """Release the lost job's run, then let Celery requeue (or cancel) the message."""
        exc: object = exc_info.exception
        if isinstance(exc, _WRAPPED):
            exc = getattr(exc, "exc", exc)
        if isinstance(exc, _PROCESS_LOST):
            try:
                # Only WorkerLostError is requeued by Celery; otherwise the message waits for the
                # broker's restore, so publish a fresh one.
                self._release_lost_run(publish=not isinstance(exc, WorkerLostError))
            except Exception:  # Celery must still requeue the message; the lease expires later
                logger.exception("could not release the lease of a lost job process")
        return super().on_failure(
            exc_info, send_failed_event=send_failed_event, return_ok=return_ok
        )

    def _release_lost_run(self, *, publish: bool) -> None:
        # Celery cancelled the job itself (the broker connection was lost, or a cold shutdown):
        # not the run's fault, so its attempt is given back. A process that died on its own
        # (SIGKILL, out of memory) spends it: a run that kills its process must end FAILED.
        cancelled_by_worker = bool(getattr(self, "_already_cancelled", False))
        run_id = _run_id_of(self.args)
        if run_id is None or self.worker_pid is None:
            # Never started on a process: nothing was claimed under its name.
            logger.info(
                "lost job %s had no job process (args %r); nothing to release", self.id, self.args
            )
            return
        owner = lease_owner_name(socket.gethostname(), int(self.worker_pid), str(self.id))
        kind = JobKind.EVAL if self.task_name == EVAL_TASK else JobKind.TRAIN
        found = services()
        try:
            run = found.repository.release_lost_run(
                run_id, owner=owner, kind=kind, spend_attempt=not cancelled_by_worker
            )
            if run is None:
                return  # it finished, or another attempt already has it
            logger.warning(
                "%s: job process %s was %s; released (%s, attempt %s)",
                run.label,
                self.worker_pid,
                "cancelled by the worker, attempt not spent" if cancelled_by_worker else "lost",
                run.status.value,
                run.attempt,
            )
            if publish and run.status is RunStatus.QUEUED:
                publisher_for(found.settings).publish(found.repository, run)
            if run.sweep_id is not None and run.status.terminal:  # its slot went to a new trial
                trial_ended(found.repository, found.settings, run.sweep_id)
        except TrainqError as exc:  # the lease expires and the reconciler takes over instead
            logger.warning(
                "%s %s: could not release the lost job's lease: %s", kind.value, run_id, exc
            )


def _run_id_of(args: object) -> int | None:
    if not isinstance(args, list | tuple) or len(args) != 1:
        return None
    run_id = args[0]
    if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 1:
        return None
    return run_id
