"""Class probabilities and the notebook's three-sample demo, in NumPy only.

No TensorFlow: ``trainq predict`` runs in the CLI process, where TensorFlow would cost seconds of
start-up for one 784x10 matmul. The arithmetic matches the training step's (pixels / 255 in
float32, ``x @ W + b``, softmax), so probabilities agree with TensorFlow's to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.config import Split
from worker.data import CLASS_NAMES, IMAGE_PIXELS, FashionMnist
from worker.training.state import WEIGHT_NAMES, check_weights


@dataclass(frozen=True)
class Prediction:
    """The model's guess for one example of a split."""

    index: int  # position of the example in its split
    true_class: int
    true_name: str
    predicted_class: int
    predicted_name: str
    probability: float  # the model's probability for predicted_class


def predict_probabilities(
    arrays: Mapping[str, npt.ArrayLike], images_uint8: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    """Softmax class probabilities of each image.

    Args:
        arrays: Weights with ``W`` ``(784, 10)`` and ``b`` ``(10,)``; other arrays are ignored.
        images_uint8: ``(n, 784)`` pixels in 0..255.

    Returns:
        float32 array ``(n, 10)``; each row sums to 1.

    Raises:
        IncompatibleWeightsError: when ``W`` or ``b`` is missing or has the wrong shape.
        ValueError: when the images are not ``(n, 784)``.
    """
    check_weights(arrays, WEIGHT_NAMES)
    images = np.asarray(images_uint8)
    if images.ndim != 2 or images.shape[1] != IMAGE_PIXELS:
        raise ValueError(f"images must have shape (n, {IMAGE_PIXELS}), got {images.shape}")
    weights = np.asarray(arrays["W"], dtype=np.float32)
    bias = np.asarray(arrays["b"], dtype=np.float32)
    logits = (images.astype(np.float32) / np.float32(255.0)) @ weights + bias
    # Subtracting the row maximum keeps exp() finite for any weights.
    logits -= logits.max(axis=1, keepdims=True)
    exponentials = np.exp(logits)
    probabilities: npt.NDArray[np.float32] = exponentials / exponentials.sum(axis=1, keepdims=True)
    return probabilities


def sample_predictions(
    arrays: Mapping[str, npt.ArrayLike],
    data: FashionMnist,
    n: int = 3,
    seed: int | None = None,
    *,
    split: Split = Split.TEST,
) -> list[Prediction]:
    """Predict ``n`` distinct random examples of ``split``, like the notebook's last cell.

    Args:
        arrays: Weights with ``W`` and ``b``.
        data: The dataset.
        n: How many examples (at most the split's size).
        seed: Chooses the examples; None draws fresh ones each call.
        split: Which split to draw from; the notebook uses the test split.

    Returns:
        One Prediction per example, in the order drawn.
    """
    images, labels = data.split(split)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), size=n, replace=False)
    probabilities = predict_probabilities(arrays, images[chosen])
    predictions = []
    for index, row in zip(chosen, probabilities, strict=True):
        true_class, predicted = int(labels[index]), int(np.argmax(row))
        predictions.append(
            Prediction(
                index=int(index),
                true_class=true_class,
                true_name=CLASS_NAMES[true_class],
                predicted_class=predicted,
                predicted_name=CLASS_NAMES[predicted],
                probability=float(row[predicted]),
            )
        )
    return predictions
