"""Warm a job process up before its first job: TensorFlow, the data set, the compiled chunk.

A process that has never trained spends seconds importing TensorFlow, loading Fashion-MNIST and
tracing and compiling the training chunk before its first step. Every job process a worker forks
pays this: the first, the replacement of a killed one, the first of a restarted worker. Each one
pays it here instead, in ``worker_process_init`` (``worker.cluster.lifecycle``): after the fork, so
TensorFlow never enters the worker's main process, and *synchronously*, because billiard gives a
process work only once it reported up, which it does after this hook returns. No job runs beside
the warm-up. (An earlier warm-up ran in a thread beside the first job, and TensorFlow's import,
which captures file descriptor 2 while it prints its banner, swallowed that job's log lines.)
The pool's patience with a process that has not yet reported up is raised to match
(``worker.cluster.celery_app.PROC_ALIVE_TIMEOUT_S``).

Nothing here is required: a failure is logged and left for the first job to meet and report.

Most of a warm-up is importing TensorFlow. That import never loads Keras
(``worker.tensorflow_import``: a third of its CPU time, with Matplotlib and IPython behind it),
and of what remains the costliest modules that are not TensorFlow are ml_dtypes (0.75 s: its
extension's initialisation), SciPy's sparse matrices and h5py. The worker's main process imports
those once, before the pool forks (``worker_init``), so every job process it forks, the
replacement of a killed one included, finds them loaded. None of them imports TensorFlow, which
still never enters the main process (``tests/integration/test_cluster.py`` asks it over the
control channel).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Final, Protocol

from storage import Settings
from storage.records import RunRecord, RunStatus
from worker.cluster.celery_app import app
from worker.cluster.idle_cpu import run_on_idle_cpu
from worker.cluster.services import services
from worker.cluster.shutdown import WORKER_STOPPING
from worker.cluster.standby import JOB_SLOTS_CONF_KEY, mark_warming, warm_or_warming, warm_up_turn
from worker.config import TrainConfig
from worker.data import load_fashion_mnist
from worker.datasets.fetch import (
    DatasetChunkReader,
    prefetch_to_disk,
    preload_cached_versions,
)
from worker.jobs import effective_device

logger = logging.getLogger(__name__)

#: What ``import tensorflow`` loads that is not TensorFlow and costs most (python -X importtime).
TENSORFLOW_DEPENDENCIES: Final = ("ml_dtypes", "scipy.sparse", "h5py")


#: Dataset versions a worker's main process loads from its disk cache before it forks: the
#: most recently used, within this many bytes (shared copy-on-write by its job processes).
PRELOAD_VERSIONS: Final = 2
PRELOAD_MAX_BYTES: Final = 1024**3
#: Versions fetched ahead for queued runs, and how many of the newest queued runs are looked at.
PREFETCH_VERSIONS: Final = 2
PREFETCH_SCAN_RUNS: Final = 200

#: How often a warming job process checks whether its worker is stopping.
_STOP_POLL_S: Final = 0.1


def preload_tensorflow_dependencies() -> list[str]:
    """Import, in the calling process, the modules TensorFlow's import would load after a fork.

    Returns:
        The names that are loaded now; one that is not installed is skipped.
    """
    for name in TENSORFLOW_DEPENDENCIES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    return [name for name in TENSORFLOW_DEPENDENCIES if name in sys.modules]


def preload_training_data() -> bool:
    """Load Fashion-MNIST, and the dataset versions the worker's jobs used last, in the calling
    process (the worker's main process, before the pool forks), so that every job process it
    forks finds the arrays in memory (``load_fashion_mnist``'s per-process cache, and
    ``worker.datasets.fetch``'s) instead of reading, unpacking or hashing the files again.

    The versions come from the worker's data cache on disk, never the database: a worker starts
    whether or not the database answers. At most :data:`PRELOAD_VERSIONS` of them, the most
    recently used first, together within :data:`PRELOAD_MAX_BYTES`; each is verified by its hash
    like any load. (Versions that queued runs need and the disk does not hold are fetched once
    the worker is up: :func:`prefetch_queued_versions`.)

    The arrays are NumPy's, no TensorFlow. They are shared copy-on-write with the job processes,
    and only read there: each process copies the training images into a tensor of its own.

    Returns:
        True when Fashion-MNIST is loaded; False when it could not be (logged as a warning: the
        first job meets the same problem and records it on its run).
    """
    settings = services().settings
    try:
        versions = preload_cached_versions(
            settings, max_versions=PRELOAD_VERSIONS, max_bytes=PRELOAD_MAX_BYTES
        )
    except Exception as exc:  # a speed-up only: the first job loads what it needs
        logger.warning("dataset versions not preloaded for the job processes: %s", exc)
    else:
        if versions:
            logger.info("preloaded dataset versions %s", ", ".join(v[:12] for v in versions))
    try:
        load_fashion_mnist(settings.data_dir, download=False)
    except Exception as exc:
        logger.warning("Fashion-MNIST not preloaded for the job processes: %s", exc)
        return False
    return True


class QueuedVersionsStore(DatasetChunkReader, Protocol):
    """What prefetching needs of the store (``storage.Repository`` is one)."""

    def list_runs(
        self, *, statuses: Sequence[RunStatus] | None = None, limit: int | None = None
    ) -> list[RunRecord]:
        """Runs in one of ``statuses``, newest first, at most ``limit``."""
        ...


def prefetch_queued_versions(
    repository: QueuedVersionsStore,
    settings: Settings,
    queues: Collection[str],
    *,
    max_versions: int = PREFETCH_VERSIONS,
) -> list[str]:
    """Fetch into the worker's disk cache the dataset versions of the runs queued for its
    queues, so that the jobs that take them find them on disk (a read and a hash check, not a
    fetch from the database).

    Called once a worker is up, in a thread of its main process: it never delays the start,
    and a database that does not answer only costs a warning. Bounded and cheap: one query of
    the :data:`PREFETCH_SCAN_RUNS` newest queued runs, and at most ``max_versions`` versions,
    those of the runs queued first; each is verified, and kept only within the cache's budget.
    Nothing is kept in the main process's memory.

    Returns:
        The hashes the disk cache holds now, of those it looked for.
    """
    try:
        queued = repository.list_runs(statuses=[RunStatus.QUEUED], limit=PREFETCH_SCAN_RUNS)
    except Exception as exc:
        logger.warning("dataset versions of queued runs not prefetched: %s", exc)
        return []
    wanted: list[str] = []
    for run in reversed(queued):  # oldest first: they are taken first
        sha256 = run.data_sha256
        if run.queue in queues and sha256 is not None and sha256 not in wanted:
            wanted.append(sha256)
    held = []
    for sha256 in wanted[:max_versions]:
        if WORKER_STOPPING.is_set():
            break
        try:
            if prefetch_to_disk(repository, settings, sha256):
                held.append(sha256)
        except Exception as exc:  # the job that needs it meets the problem and records it
            logger.warning("dataset version %s not prefetched: %s", sha256[:12], exc)
    if held:
        logger.info("dataset versions of queued runs on disk: %s", ", ".join(v[:12] for v in held))
    return held


def start_prefetching_queued_versions(queues: Collection[str]) -> threading.Thread:
    """Run :func:`prefetch_queued_versions` in a daemon thread of this (the main) process."""
    found = services()
    thread = threading.Thread(
        target=prefetch_queued_versions,
        args=(found.repository, found.settings, tuple(queues)),
        name="trainq-prefetch-data",
        daemon=True,
    )
    thread.start()
    return thread


def warm_up_job_process() -> bool:
    """Import TensorFlow, load the data and compile the default training chunk in this process.

    Each process decides in its turn (``worker.cluster.standby.warm_up_turn``). One the worker needs
    for a job slot (fewer siblings warm or warming up than slots) keeps the turn and warms up at
    normal priority, so a worker's first job waits for one warm-up, not several competing for
    the cores. A spare (a killed job process's replacement while the spare took over, or a
    worker's second process) gives the turn back and warms up on idle CPU only
    (``worker.cluster.idle_cpu``): it never slows the jobs in training. When a job process dies
    while the spare is still warming, the spare keeps warming on the core the dead job freed, and
    the replacement, the next spare, waits for it: spares take turns of their own.

    Returns:
        True when the process is warm; False when a step failed (logged as a warning).
    """
    if WORKER_STOPPING.is_set():  # forked while the worker stops: it will take no job
        logger.info("job process %s: the worker is stopping; no warm-up", os.getpid())
        return False
    waited = time.perf_counter()
    with _exit_if_the_worker_stops():
        with warm_up_turn():
            spare = _is_spare()
            mark_warming()
            if not spare:
                return _warm_up(waited, spare=False)
        with warm_up_turn(spare=True):
            return _warm_up(waited, spare=True)


def _is_spare() -> bool:
    """Whether every job slot of the worker has a process warm or warming up (unknown: no)."""
    slots = app.conf.get(JOB_SLOTS_CONF_KEY)
    return isinstance(slots, int) and warm_or_warming() >= slots


@contextlib.contextmanager
def _exit_if_the_worker_stops() -> Iterator[None]:
    """Exit this process at once if the worker starts stopping while it waits or warms up.

    A warming process cannot take the pool's stop message until its warm-up returns (an import
    cannot be interrupted), so a stopping worker would wait seconds for a process that will never
    take a job. It holds no run, so leaving at once loses nothing.
    """
    done = threading.Event()

    def watch() -> None:
        while not done.wait(_STOP_POLL_S):
            if WORKER_STOPPING.is_set():
                logger.info(
                    "job process %s: the worker is stopping; warm-up abandoned", os.getpid()
                )
                logging.shutdown()
                os._exit(0)

    watcher = threading.Thread(target=watch, name="trainq-warm-up-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _warm_up(waited: float, *, spare: bool) -> bool:
    started = time.perf_counter()
    step: Callable[[Callable[[], object]], object] = run_on_idle_cpu if spare else _now
    try:
        from worker.training.xla_choice import use_compile_cache

        use_compile_cache(services().settings.home_dir)  # before TensorFlow reads its flags
        step(lambda: importlib.import_module("worker.training.loop"))  # imports TensorFlow
        from worker.training import prepare, start_thread_pools

        if spare:  # its jobs' thread pools are born here, at normal priority, not on idle CPU
            start_thread_pools()
        imported = time.perf_counter()
        settings = services().settings
        data = load_fashion_mnist(settings.data_dir, download=False)
        loaded = time.perf_counter()
        default = TrainConfig()
        config = default.model_copy(update={"device": effective_device(default.device, settings)})
        step(lambda: prepare(config.resolved(), data))
    except Exception as exc:  # the first job meets the same problem and records it on its run
        logger.warning("job process %s: warm-up skipped: %s", os.getpid(), exc)
        return False
    done = time.perf_counter()
    logger.info(
        "job process %s warm in %.1f s (TensorFlow import %.1f s, data %.1f s, compile %.1f s; %s)",
        os.getpid(),
        done - started,
        imported - started,
        loaded - imported,
        done - loaded,
        f"a spare, on idle CPU; waited {started - waited:.1f} s"
        if spare
        else f"waited {started - waited:.1f} s for its turn",
    )
    return True


def _now(work: Callable[[], object]) -> object:
    return work()
