"""Class probabilities and the notebook's three-sample demo, in NumPy only.

No TensorFlow: ``trainq predict`` runs in the CLI process, where TensorFlow would cost seconds of
start-up for one D x C matmul. The arithmetic matches the training step's (pixels / 255 in
float32, or the features standardised with the version's statistics; ``x @ W + b``, softmax), so
probabilities agree with TensorFlow's to float32 rounding. Class names are the dataset's (the
numbers when it has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.config import Split
from worker.data import FashionMnist
from worker.training.state import FASHION_MNIST_DIMS, WEIGHT_NAMES, ModelDims, check_weights
from worker.training_data import FeatureKind, TrainingData, training_data


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
    arrays: Mapping[str, npt.ArrayLike],
    features: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    *,
    dims: ModelDims = FASHION_MNIST_DIMS,
    feature_kind: FeatureKind = FeatureKind.UINT8,
    dataset: str | None = None,
) -> npt.NDArray[np.float32]:
    """Softmax class probabilities of each example.

    Args:
        arrays: Weights with ``W`` ``(D, C)`` and ``b`` ``(C,)``; other arrays are ignored.
        features: ``(n, D)``: pixels in 0..255 (``UINT8``) or standardised features
            (``FLOAT32``, as ``TrainingData`` holds them).
        dims: The model's width (Fashion-MNIST's 784 x 10 by default).
        feature_kind: How ``features`` become the model's inputs.
        dataset: How messages name the data, when the weights may not fit it.

    Returns:
        float32 array ``(n, C)``; each row sums to 1.

    Raises:
        IncompatibleWeightsError: when ``W`` or ``b`` is missing or has the wrong shape.
        ValueError: when the features are not ``(n, D)``.
    """
    check_weights(arrays, WEIGHT_NAMES, dims, dataset=dataset)
    given = np.asarray(features)
    if given.ndim != 2 or given.shape[1] != dims.features:
        raise ValueError(f"features must have shape (n, {dims.features}), got {given.shape}")
    weights = np.asarray(arrays["W"], dtype=np.float32)
    bias = np.asarray(arrays["b"], dtype=np.float32)
    if feature_kind is FeatureKind.UINT8:
        inputs = given.astype(np.float32) / np.float32(255.0)
    else:
        inputs = given.astype(np.float32, copy=False)
    logits = inputs @ weights + bias
    # Subtracting the row maximum keeps exp() finite for any weights.
    logits -= logits.max(axis=1, keepdims=True)
    exponentials = np.exp(logits)
    probabilities: npt.NDArray[np.float32] = exponentials / exponentials.sum(axis=1, keepdims=True)
    return probabilities


def sample_predictions(
    arrays: Mapping[str, npt.ArrayLike],
    data: TrainingData | FashionMnist,
    n: int = 3,
    seed: int | None = None,
    *,
    split: Split = Split.TEST,
) -> list[Prediction]:
    """Predict ``n`` distinct random examples of ``split``, like the notebook's last cell.

    Args:
        arrays: Weights with ``W`` and ``b``.
        data: The dataset (its class names name the classes).
        n: How many examples (at most the split's size).
        seed: Chooses the examples; None draws fresh ones each call.
        split: Which split to draw from; the notebook uses the test split.

    Returns:
        One Prediction per example, in the order drawn.
    """
    ready = training_data(data)
    features, labels = ready.split(split)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), size=n, replace=False)
    probabilities = predict_probabilities(
        arrays,
        features[chosen],
        dims=ready.dims,
        feature_kind=ready.feature_kind,
        dataset=ready.label,
    )
    names = ready.class_names
    predictions = []
    for index, row in zip(chosen, probabilities, strict=True):
        true_class, predicted = int(labels[index]), int(np.argmax(row))
        predictions.append(
            Prediction(
                index=int(index),
                true_class=true_class,
                true_name=names[true_class],
                predicted_class=predicted,
                predicted_name=names[predicted],
                probability=float(row[predicted]),
            )
        )
    return predictions
