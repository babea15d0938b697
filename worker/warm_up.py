"""Warm a job process up before its first job: TensorFlow, the data set, the compiled chunk.

A process that has never trained spends seconds importing TensorFlow, loading Fashion-MNIST and
tracing and compiling the training chunk before its first step. Every job process a worker forks
pays this: the first, the replacement of a killed one, the first of a restarted worker. Each one
pays it here instead, in ``worker_process_init`` (``worker.lifecycle``): after the fork, so
TensorFlow never enters the worker's main process, and *synchronously*, because billiard gives a
process work only once it reported up, which it does after this hook returns. No job runs beside
the warm-up. (An earlier warm-up ran in a thread beside the first job, and TensorFlow's import,
which captures file descriptor 2 while it prints its banner, swallowed that job's log lines.)
The pool's patience with a process that has not yet reported up is raised to match
(``worker.celery_app.PROC_ALIVE_TIMEOUT_S``).

Nothing here is required: a failure is logged and left for the first job to meet and report.

Most of a warm-up is importing TensorFlow, and ~40 % of that import's CPU time (measured on TF 2.21
with Keras 3: 4.0-4.8 s alone, 2.5 s after the preload) is spent in modules that are not
TensorFlow: ml_dtypes, and what Keras 3 imports eagerly (matplotlib.pyplot, IPython, SciPy's
sparse matrices, h5py). The worker's main process imports those once, before the pool forks
(``worker_init``), so every job process it forks, the replacement of a killed one included, finds
them loaded. None of them imports TensorFlow, which still never enters the main process
(``tests/integration/test_cluster.py`` asks it over the control channel).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import time
from typing import Final

from worker.config import TrainConfig
from worker.data import load_fashion_mnist
from worker.jobs import effective_device
from worker.services import services

logger = logging.getLogger(__name__)

#: What ``import tensorflow`` loads that is not TensorFlow and costs most (python -X importtime).
TENSORFLOW_DEPENDENCIES: Final = (
    "ml_dtypes",
    "matplotlib.pyplot",
    "IPython",
    "scipy.sparse",
    "h5py",
)


def preload_tensorflow_dependencies() -> list[str]:
    """Import, in the calling process, the modules TensorFlow's import would load after a fork.

    Returns:
        The names that are loaded now; one that is not installed is skipped.
    """
    for name in TENSORFLOW_DEPENDENCIES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    return [name for name in TENSORFLOW_DEPENDENCIES if name in sys.modules]


def warm_up_job_process() -> bool:
    """Import TensorFlow, load the data and compile the default training chunk in this process.

    Returns:
        True when the process is warm; False when a step failed (logged as a warning).
    """
    started = time.perf_counter()
    try:
        from worker.training import prepare  # imports TensorFlow

        imported = time.perf_counter()
        settings = services().settings
        data = load_fashion_mnist(settings.data_dir, download=False)
        loaded = time.perf_counter()
        default = TrainConfig()
        config = default.model_copy(update={"device": effective_device(default.device, settings)})
        prepare(config.resolved(), data)
    except Exception as exc:  # the first job meets the same problem and records it on its run
        logger.warning("job process %s: warm-up skipped: %s", os.getpid(), exc)
        return False
    done = time.perf_counter()
    logger.info(
        "job process %s warm in %.1f s (TensorFlow import %.1f s, data %.1f s, compile %.1f s)",
        os.getpid(),
        done - started,
        imported - started,
        loaded - imported,
        done - loaded,
    )
    return True
