"""Hooks into the worker's life: the reconciler in the main process, the stop flag its job processes
read (``worker.cluster.shutdown``), the job processes' warm-up (``worker.cluster.warm_up``), and a
health probe.

Imported by ``worker.cluster.tasks`` so that any process that loads the tasks (``trainq worker``, or
``celery --app worker.cluster.celery_app worker``) gets them.
"""

from __future__ import annotations

import sys
from typing import Any

from celery.signals import (
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from celery.worker.control import inspect_command

from worker.cluster.celery_app import app
from worker.cluster.reconciler import ReconcilerThread
from worker.cluster.services import services
from worker.cluster.shutdown import WORKER_STOPPING
from worker.cluster.standby import create_warm_up_lock, remove_warm_up_lock
from worker.cluster.warm_up import (
    TENSORFLOW_DEPENDENCIES,
    preload_tensorflow_dependencies,
    preload_training_data,
    start_prefetching_queued_versions,
    warm_up_job_process,
)

_reconciler: list[ReconcilerThread] = []
_training_data_preloaded: list[bool] = []


@worker_ready.connect
def _start_reconciler(**_: Any) -> None:
    found = services()
    thread = ReconcilerThread(found.repository, found.settings)
    thread.start()
    _reconciler.append(thread)
    # Once up, never before: a worker's start never waits for the database.
    start_prefetching_queued_versions(app.amqp.queues.consume_from)


@worker_init.connect
def _preload_for_job_processes(**_: Any) -> None:
    # In the main process, before the pool forks: every job process it forks inherits both.
    preload_tensorflow_dependencies()
    _training_data_preloaded.append(preload_training_data())
    create_warm_up_lock()


@worker_process_init.connect
def _warm_up_job_process(**_: Any) -> None:
    warm_up_job_process()  # in the job process, after the fork, before it reports up


@worker_shutting_down.connect
def _ask_jobs_to_hand_back(**_: Any) -> None:
    # Runs in the main process's signal handler (SIGTERM, Ctrl-C): only set a byte.
    WORKER_STOPPING.set()


@worker_shutdown.connect
def _stop_reconciler(**_: Any) -> None:
    for thread in _reconciler:
        thread.stop()
    remove_warm_up_lock()


@inspect_command(name="trainq_main_process")
def main_process_report(state: Any, **_: Any) -> dict[str, Any]:
    """Reply from the worker's main process: is TensorFlow loaded there? (It must never be.) And
    which of TensorFlow's dependencies, and whether the training data, it preloaded for its job
    processes."""
    return {
        "tensorflow_loaded": "tensorflow" in sys.modules,
        "reconciler": bool(_reconciler),
        "preloaded": [name for name in TENSORFLOW_DEPENDENCIES if name in sys.modules],
        "training_data_preloaded": any(_training_data_preloaded),
    }
