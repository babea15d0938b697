"""The TensorFlow training core: a config, data and callbacks in; a result out.

Knows nothing of Celery or SQL. Public names are re-exported here lazily (PEP 562): importing
``worker.training`` or its NumPy-only modules (``state``, ``batches``) does not import TensorFlow;
touching ``train``, ``configure_tensorflow`` or ``resolve_device`` does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.training.loop import prepare, train
    from worker.training.runtime import ResolvedDevice, configure_tensorflow, resolve_device
    from worker.training.state import ChunkReport, TrainingState, TrainResult

__all__ = [
    "ChunkReport",
    "ResolvedDevice",
    "TrainResult",
    "TrainingState",
    "configure_tensorflow",
    "prepare",
    "resolve_device",
    "train",
]

_HOMES = {
    "ChunkReport": "worker.training.state",
    "TrainResult": "worker.training.state",
    "TrainingState": "worker.training.state",
    "ResolvedDevice": "worker.training.runtime",
    "configure_tensorflow": "worker.training.runtime",
    "resolve_device": "worker.training.runtime",
    "prepare": "worker.training.loop",
    "train": "worker.training.loop",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
