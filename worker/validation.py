"""Validation metrics of a run's weights over its held-out examples, and the examples of a split.

NumPy only: one ``(n, D) @ (D, C)`` product per checkpoint, no TensorFlow graph to build.
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
from worker.training_data import FeatureArray, LabelArray, TrainingData, training_data

_Converted = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]

#: Held-out sets kept converted, by (dataset identity, val_seed, val_size); a few at most.
_CONVERTED: dict[tuple[int, int | None, int], tuple[TrainingData, _Converted]] = {}
_CONVERTED_LIMIT = 2
_CONVERTED_LOCK = threading.Lock()


@dataclass(frozen=True)
class ValidationResult:
    """Mean cross-entropy and accuracy over the held-out images."""

    loss: float
    accuracy: float


def split_arrays(
    data: TrainingData | FashionMnist, split: Split, trained: TrainConfig
) -> tuple[FeatureArray, LabelArray]:
    """Features and labels of ``split`` for a run trained with ``trained`` (``val``: its holdout).

    Raises:
        DeterministicJobError: ``val`` asked of a run trained without a validation split, or
            ``test`` of a dataset without a test split.
    """
    data = training_data(data)
    if split is not Split.VAL:
        return data.split(split.value)
    if trained.val_size == 0:
        raise DeterministicJobError(
            "the run held out no validation images (it was trained with --val-size 0); "
            "evaluate it with --split test, or train with --val-size N"
        )
    indices = holdout(trained.val_seed, trained.val_size, data.train_examples).val_indices
    return data.x_train[indices], data.y_train[indices]


class Validator:
    """Computes a run's validation metrics; the held-out images are converted once per process.

    Every trial of a sweep holds out the same images (same ``val_seed`` and ``val_size``), so a
    worker converts them once for all the trials it runs, not once per trial.
    """

    def __init__(self, data: TrainingData | FashionMnist, config: TrainConfig) -> None:
        self._images, self._labels = _converted_holdout(training_data(data), config)

    def measure(self, arrays: dict[str, npt.NDArray[np.float32]]) -> ValidationResult:
        """Loss (softmax cross-entropy) and accuracy of weights ``W``, ``b`` on the holdout."""
        logits = self._images @ arrays["W"] + arrays["b"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_normalizer = np.log(np.exp(shifted).sum(axis=1))
        picked = shifted[np.arange(len(self._labels)), self._labels]
        loss = float(np.mean(log_normalizer - picked))
        accuracy = float(np.mean(logits.argmax(axis=1) == self._labels))
        return ValidationResult(loss=loss, accuracy=accuracy)


def _converted_holdout(data: TrainingData, config: TrainConfig) -> _Converted:
    """The run's held-out examples as the model's float32 inputs and labels as int64, cached
    per process."""
    key = (id(data), config.val_seed, config.val_size)
    with _CONVERTED_LOCK:
        cached = _CONVERTED.get(key)
        if cached is not None and cached[0] is data:
            return cached[1]
        images, labels = split_arrays(data, Split.VAL, config)
        converted = (data.model_inputs(images), labels.astype(np.int64))
        converted[0].setflags(write=False)
        converted[1].setflags(write=False)
        while len(_CONVERTED) >= _CONVERTED_LIMIT:
            _CONVERTED.pop(next(iter(_CONVERTED)))
        _CONVERTED[key] = (data, converted)
        return converted
