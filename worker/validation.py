"""Validation metrics of a run's weights over its held-out images, and the images of a split.

NumPy only: one ``(n, 784) @ (784, 10)`` product per checkpoint, no TensorFlow graph to build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.config import Split, TrainConfig
from worker.data import FashionMnist
from worker.errors import DeterministicJobError
from worker.holdout import holdout

UInt8Array = npt.NDArray[np.uint8]


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
    """Computes a run's validation metrics; the held-out images are converted once."""

    def __init__(self, data: FashionMnist, config: TrainConfig) -> None:
        images, labels = split_arrays(data, Split.VAL, config)
        self._images = images.astype(np.float32) / np.float32(255.0)
        self._labels = labels.astype(np.int64)

    def measure(self, arrays: dict[str, npt.NDArray[np.float32]]) -> ValidationResult:
        """Loss (softmax cross-entropy) and accuracy of weights ``W``, ``b`` on the holdout."""
        logits = self._images @ arrays["W"] + arrays["b"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_normalizer = np.log(np.exp(shifted).sum(axis=1))
        picked = shifted[np.arange(len(self._labels)), self._labels]
        loss = float(np.mean(log_normalizer - picked))
        accuracy = float(np.mean(logits.argmax(axis=1) == self._labels))
        return ValidationResult(loss=loss, accuracy=accuracy)
