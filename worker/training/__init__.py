"""The TensorFlow training core: a config, data and callbacks in; a result out.

Knows nothing of Celery or SQL. Public names are re-exported here lazily (PEP 562): importing
``worker.training`` or its NumPy-only modules (``state``, ``batches``) does not import TensorFlow;
touching ``train``, ``configure_tensorflow`` or ``resolve_device`` does.
"""

from __future__ import annotations

import functools
import importlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.training.loop import prepare, train
    from worker.training.runtime import (
        ResolvedDevice,
        configure_tensorflow,
        resolve_device,
        start_thread_pools,
    )
    from worker.training.state import ChunkReport, TrainingState, TrainResult

__all__ = [
    "ChunkReport",
    "ResolvedDevice",
    "TrainResult",
    "TrainingState",
    "configure_tensorflow",
    "prepare",
    "resolve_device",
    "start_importing",
    "start_thread_pools",
    "train",
    "wait_for_import",
]


@functools.cache
def _import_thread() -> threading.Thread:
    thread = threading.Thread(
        target=importlib.import_module,
        args=("worker.training.loop",),
        name="trainq-import-tensorflow",
        daemon=True,
    )
    thread.start()
    return thread


def start_importing() -> None:
    """Import the training loop (TensorFlow: ~2 s) in a thread, while the caller does other work.

    For the embedded `trainq train`, whose job thread needs it only after the database is opened,
    the run inserted and the data loaded: that thread's own import then waits for this one
    (Python's per-module import lock) instead of starting from nothing. While TensorFlow imports,
    file descriptor 2 is captured (``worker.tensorflow_import``): whatever another thread writes
    to stderr meanwhile is lost, so the caller calls :func:`wait_for_import` before printing an
    error. Not for a worker's job process, whose log lines must never be lost.
    """
    _import_thread()


def wait_for_import() -> None:
    """Return once an import started by :func:`start_importing` is over (stderr is whole again)."""
    if _import_thread.cache_info().currsize:
        _import_thread().join()


_HOMES = {
    "ChunkReport": "worker.training.state",
    "TrainResult": "worker.training.state",
    "TrainingState": "worker.training.state",
    "ResolvedDevice": "worker.training.runtime",
    "configure_tensorflow": "worker.training.runtime",
    "resolve_device": "worker.training.runtime",
    "start_thread_pools": "worker.training.runtime",
    "prepare": "worker.training.loop",
    "train": "worker.training.loop",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
