"""Validation metrics of a run's weights over its held-out images, and the images of a split.

NumPy only: one ``(n, 784) @ (784, 10)`` product per checkpoint, no TensorFlow graph to build.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.config import Split, TrainConfig
from worker.data import FashionMnist
from worker.errors import DeterministicJobError
from worker.holdout import holdout

UInt8Array = npt.NDArray[np.uint8]
_Converted = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]

#: Held-out sets kept converted, by (dataset identity, val_seed, val_size); a few at most.
_CONVERTED: dict[tuple[int, int | None, int], tuple[FashionMnist, _Converted]] = {}
_CONVERTED_LIMIT = 2
_CONVERTED_LOCK = threading.Lock()


@dataclass(frozen=True)
class ValidationResult:
    """Mean cross-entropy and accuracy over the held-out images."""

    loss: float
    accuracy: float


def split_arrays(
    data: FashionMnist, split: Split, trained: TrainConfig
) -> tuple[UInt8Array, UInt8Array]:
    """Images and labels of ``split`` for a run trained with ``trained`` (``val``: its holdout).

    Raises:
        DeterministicJobError: ``val`` asked of a run trained without a validation split.
    """
    if split is not Split.VAL:
        return data.split(split.value)
    if trained.val_size == 0:
        raise DeterministicJobError(
            "the run held out no validation images (it was trained with --val-size 0); "
            "evaluate it with --split test, or train with --val-size N"
        )
    indices = holdout(trained.val_seed, trained.val_size).val_indices
    return data.train_images[indices], data.train_labels[indices]


class Validator:
    """Computes a run's validation metrics; the held-out images are converted once per process.

    Every trial of a sweep holds out the same images (same ``val_seed`` and ``val_size``), so a
    worker converts them once for all the trials it runs, not once per trial.
    """

    def __init__(self, data: FashionMnist, config: TrainConfig) -> None:
        self._images, self._labels = _converted_holdout(data, config)

    def measure(self, arrays: dict[str, npt.NDArray[np.float32]]) -> ValidationResult:
        """Loss (softmax cross-entropy) and accuracy of weights ``W``, ``b`` on the holdout."""
        logits = self._images @ arrays["W"] + arrays["b"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_normalizer = np.log(np.exp(shifted).sum(axis=1))
        picked = shifted[np.arange(len(self._labels)), self._labels]
        loss = float(np.mean(log_normalizer - picked))
        accuracy = float(np.mean(logits.argmax(axis=1) == self._labels))
        return ValidationResult(loss=loss, accuracy=accuracy)


def _converted_holdout(data: FashionMnist, config: TrainConfig) -> _Converted:
    """The run's held-out images as float32 in [0, 1] and labels as int64, cached per process."""
    key = (id(data), config.val_seed, config.val_size)
    with _CONVERTED_LOCK:
        cached = _CONVERTED.get(key)
        if cached is not None and cached[0] is data:
            return cached[1]
        images, labels = split_arrays(data, Split.VAL, config)
        converted = (images.astype(np.float32) / np.float32(255.0), labels.astype(np.int64))
        converted[0].setflags(write=False)
        converted[1].setflags(write=False)
        while len(_CONVERTED) >= _CONVERTED_LIMIT:
            _CONVERTED.pop(next(iter(_CONVERTED)))
        _CONVERTED[key] = (data, converted)
        return converted
