"""Warm a new job process up before its first job: import TensorFlow, load the dataset.

A job process that has never trained spends seconds (more on a busy machine) importing TensorFlow
and loading Fashion-MNIST before its first chunk. That cost lands on every takeover a restarted
worker or a replacement job process makes, so each Celery job process (``worker_process_init``,
after the fork: TensorFlow never enters the main process) pays it at once, in a daemon thread,
while it waits for work. A job that arrives meanwhile waits on the same import lock and cache.
Nothing here is required: any failure is left for the job itself to meet and report.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)


def start_warm_up() -> threading.Thread:
    """Start warming this process up in a daemon thread; returns the thread."""
    thread = threading.Thread(target=_warm_up, name="trainq-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up() -> None:
    from worker.data import load_fashion_mnist
    from worker.services import services

    try:
        from worker.training import configure_tensorflow

        configure_tensorflow()  # the import of TensorFlow, and the thread pools train() would set
        load_fashion_mnist(services().settings.data_dir, download=False)
    except Exception as exc:
        logger.debug("warm-up skipped: %s", exc)
