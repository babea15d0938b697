"""Evaluate weights over a whole split: loss, accuracy, per-class accuracy, confusion matrix.

The notebook's "test accuracy" is that of the last of 10,000 shuffled test batches; this is the
whole split, every example once. TensorFlow does the forward pass (slices of ``batch_size``
examples, each one compiled call); the per-example losses and predictions come back to NumPy,
which sums the losses in float64 and counts the confusion matrix exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.config import Device
from worker.tensorflow_import import tf
from worker.training.runtime import configure_tensorflow, resolve_device
from worker.training.state import FASHION_MNIST_DIMS, WEIGHT_NAMES, ModelDims, check_weights
from worker.training_data import FeatureKind

#: Examples per compiled call at most: 31 MB of float32 pixels, small enough for any device.
EVALUATION_BATCH = 10_000
#: ... and fewer for wide features, so one call's float32 inputs stay within this.
EVALUATION_BATCH_BYTES = 32 * 1024**2


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class EvaluationResult:
    """Metrics of one set of weights over a whole split."""

    n_examples: int
    loss: float  # mean softmax cross-entropy
    accuracy: float  # fraction of examples whose argmax is the label
    per_class_accuracy: tuple[float | None, ...]  # recall of each class; None if it has no example
    confusion: npt.NDArray[np.int64]  # (C, C): rows are true classes, columns predicted ones
    device: str  # e.g. "CPU:0"


def evaluate(
    arrays: Mapping[str, npt.ArrayLike],
    features: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    labels: npt.ArrayLike,
    *,
    dims: ModelDims = FASHION_MNIST_DIMS,
    feature_kind: FeatureKind = FeatureKind.UINT8,
    dataset: str | None = None,
    device: Device = Device.AUTO,
) -> EvaluationResult:
    """Evaluate the weights ``W`` ``(D, C)`` and ``b`` ``(C,)`` on every given example.

    Args:
        arrays: Weights (a checkpoint's arrays; velocities are ignored).
        features: ``(n, D)``: pixels in 0..255 (``UINT8``, e.g. ``data.split("test")[0]``) or
            features standardised as the run trained on them (``FLOAT32``).
        labels: ``(n,)`` classes in 0..C-1.
        dims: The model's width, D x C (Fashion-MNIST's 784 x 10 by default).
        feature_kind: How ``features`` become the model's inputs (see ``TrainingData``).
        dataset: How messages name the data, when the weights may not fit it.
        device: Where to run the forward pass.

    Raises:
        IncompatibleWeightsError: when ``W`` or ``b`` is missing or has the wrong shape.
        DeviceUnavailableError: when ``device`` is ``gpu`` and there is none.
        ValueError: when features and labels do not match or the split is empty.
    """
    check_weights(arrays, WEIGHT_NAMES, dims, dataset=dataset)
    inputs, truth = checked_split(features, labels, dims, feature_kind)
    classes = dims.classes
    configure_tensorflow()
    resolved = resolve_device(device)
    forward_slice = _forward_slice(dims.features, classes, feature_kind)
    losses, predictions = _forward(forward_slice, arrays, inputs, truth, resolved.name)
    confusion = np.bincount(truth * classes + predictions, minlength=classes * classes).reshape(
        classes, classes
    )
    return result_of(float(losses.astype(np.float64).mean()), confusion, resolved.label)


def checked_split(
    features: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    labels: npt.ArrayLike,
    dims: ModelDims,
    feature_kind: FeatureKind,
) -> tuple[npt.NDArray[np.uint8] | npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The split's features as the forward pass takes them and its labels as int64.

    Raises:
        ValueError: when features and labels do not match or the split is empty.
    """
    inputs: npt.NDArray[np.uint8] | npt.NDArray[np.float32] = (
        np.asarray(features, dtype=np.uint8)
        if feature_kind is FeatureKind.UINT8
        else np.asarray(features, dtype=np.float32)
    )
    truth = np.asarray(labels).astype(np.int64)
    if inputs.ndim != 2 or inputs.shape[1] != dims.features or len(inputs) != len(truth):
        raise ValueError(f"need features (n, {dims.features}) and labels (n,) with n > 0")
    if len(truth) == 0 or truth.min() < 0 or truth.max() >= dims.classes:
        raise ValueError(f"need labels in 0..{dims.classes - 1} and at least one example")
    return inputs, truth


def result_of(loss: float, confusion: npt.NDArray[np.int64], device: str) -> EvaluationResult:
    """The result of one weight set from its mean loss and its (C, C) confusion matrix."""
    n_examples = int(confusion.sum())
    support = confusion.sum(axis=1)
    return EvaluationResult(
        n_examples=n_examples,
        loss=loss,
        accuracy=float(np.trace(confusion) / n_examples),
        per_class_accuracy=tuple(
            float(confusion[c, c] / support[c]) if support[c] else None
            for c in range(len(confusion))
        ),
        confusion=confusion.astype(np.int64),
        device=device,
    )


_SliceFn = Callable[..., tuple[tf.Tensor, tf.Tensor]]


def _forward(
    forward_slice: _SliceFn,
    arrays: Mapping[str, npt.ArrayLike],
    images: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    truth: npt.NDArray[np.int64],
    device_name: str,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Per-example losses and predicted classes, up to ``EVALUATION_BATCH`` examples per call."""
    losses, predictions = [], []
    rows = min(EVALUATION_BATCH, max(1, EVALUATION_BATCH_BYTES // (4 * images.shape[1])))
    with tf.device(device_name):
        weights = tf.constant(np.asarray(arrays["W"], dtype=np.float32))
        bias = tf.constant(np.asarray(arrays["b"], dtype=np.float32))
        for start in range(0, len(images), rows):
            stop = start + rows
            loss, predicted = forward_slice(
                weights, bias, images[start:stop], truth[start:stop].astype(np.int32)
            )
            losses.append(loss.numpy())
            predictions.append(predicted.numpy())
    return np.concatenate(losses), np.concatenate(predictions).astype(np.int64)


def _forward_slice_graph(
    weights: tf.Tensor, bias: tf.Tensor, features: tf.Tensor, labels: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    # Same arithmetic as the training step: pixels / 255 in float32 (or the standardised
    # features as they are), then x @ W + b.
    inputs = tf.cast(features, tf.float32) / 255.0 if features.dtype == tf.uint8 else features
    logits = tf.matmul(inputs, weights) + bias
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return loss, tf.argmax(logits, axis=1, output_type=tf.int32)


@functools.lru_cache(maxsize=8)
def _forward_slice(features: int, classes: int, feature_kind: FeatureKind) -> _SliceFn:
    """The forward pass for one width and feature kind, traced once per process.

    One trace for every slice size: the batch dimension is left open. No AutoGraph: the body
    has no control flow to convert, and the conversion costs a fresh process ~0.3 s.
    """
    dtype = tf.uint8 if feature_kind is FeatureKind.UINT8 else tf.float32
    function: _SliceFn = tf.function(
        _forward_slice_graph,
        autograph=False,
        input_signature=(
            tf.TensorSpec((features, classes), tf.float32),
            tf.TensorSpec((classes,), tf.float32),
            tf.TensorSpec((None, features), dtype),
            tf.TensorSpec((None,), tf.int32),
        ),
    )
    return function
