"""Evaluate weights over a whole split: loss, accuracy, per-class accuracy, confusion matrix.

The notebook's "test accuracy" is that of the last of 10,000 shuffled test batches; this is the
whole split, every example once. TensorFlow does the forward pass (slices of ``batch_size``
examples, each one compiled call); the per-example losses and predictions come back to NumPy,
which sums the losses in float64 and counts the confusion matrix exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.config import Device
from worker.data import IMAGE_PIXELS, NUM_CLASSES
from worker.tensorflow_import import tf
from worker.training.runtime import configure_tensorflow, resolve_device
from worker.training.state import WEIGHT_NAMES, check_weights

#: Examples per compiled call: 31 MB of float32 pixels, small enough for any device.
EVALUATION_BATCH = 10_000


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class EvaluationResult:
    """Metrics of one set of weights over a whole split."""

    n_examples: int
    loss: float  # mean softmax cross-entropy
    accuracy: float  # fraction of examples whose argmax is the label
    per_class_accuracy: tuple[float | None, ...]  # recall of each class; None if it has no example
    confusion: npt.NDArray[np.int64]  # (10, 10): rows are true classes, columns predicted ones
    device: str  # e.g. "CPU:0"


def evaluate(
    arrays: Mapping[str, npt.ArrayLike],
    images_uint8: npt.NDArray[np.uint8],
    labels: npt.ArrayLike,
    *,
    device: Device = Device.AUTO,
) -> EvaluationResult:
    """Evaluate the weights ``W`` ``(784, 10)`` and ``b`` ``(10,)`` on every given example.

    Args:
        arrays: Weights (a checkpoint's arrays; velocities are ignored).
        images_uint8: ``(n, 784)`` pixels in 0..255, e.g. ``data.split("test")[0]``.
        labels: ``(n,)`` classes in 0..9.
        device: Where to run the forward pass.

    Raises:
        IncompatibleWeightsError: when ``W`` or ``b`` is missing or has the wrong shape.
        DeviceUnavailableError: when ``device`` is ``gpu`` and there is none.
        ValueError: when images and labels do not match or the split is empty.
    """
    check_weights(arrays, WEIGHT_NAMES)
    images = np.asarray(images_uint8, dtype=np.uint8)
    truth = np.asarray(labels).astype(np.int64)
    if images.ndim != 2 or images.shape[1] != IMAGE_PIXELS or len(images) != len(truth):
        raise ValueError(f"need images (n, {IMAGE_PIXELS}) and labels (n,) with n > 0")
    if len(truth) == 0 or truth.min() < 0 or truth.max() >= NUM_CLASSES:
        raise ValueError(f"need labels in 0..{NUM_CLASSES - 1} and at least one example")
    configure_tensorflow()
    resolved = resolve_device(device)
    losses, predictions = _forward(arrays, images, truth, resolved.name)
    confusion = np.bincount(
        truth * NUM_CLASSES + predictions, minlength=NUM_CLASSES * NUM_CLASSES
    ).reshape(NUM_CLASSES, NUM_CLASSES)
    support = confusion.sum(axis=1)
    return EvaluationResult(
        n_examples=len(truth),
        loss=float(losses.astype(np.float64).mean()),
        accuracy=float(np.trace(confusion) / len(truth)),
        per_class_accuracy=tuple(
            float(confusion[c, c] / support[c]) if support[c] else None for c in range(NUM_CLASSES)
        ),
        confusion=confusion.astype(np.int64),
        device=resolved.label,
    )


def _forward(
    arrays: Mapping[str, npt.ArrayLike],
    images: npt.NDArray[np.uint8],
    truth: npt.NDArray[np.int64],
    device_name: str,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Per-example losses and predicted classes, ``EVALUATION_BATCH`` examples per call."""
    losses, predictions = [], []
    with tf.device(device_name):
        weights = tf.constant(np.asarray(arrays["W"], dtype=np.float32))
        bias = tf.constant(np.asarray(arrays["b"], dtype=np.float32))
        for start in range(0, len(images), EVALUATION_BATCH):
            stop = start + EVALUATION_BATCH
            loss, predicted = _forward_slice(
                weights, bias, images[start:stop], truth[start:stop].astype(np.int32)
            )
            losses.append(loss.numpy())
            predictions.append(predicted.numpy())
    return np.concatenate(losses), np.concatenate(predictions).astype(np.int64)


def _forward_slice_graph(
    weights: tf.Tensor, bias: tf.Tensor, images: tf.Tensor, labels: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    # Same arithmetic as the training step: pixels / 255 in float32, then x @ W + b.
    logits = tf.matmul(tf.cast(images, tf.float32) / 255.0, weights) + bias
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return loss, tf.argmax(logits, axis=1, output_type=tf.int32)


# One trace for every slice size: the batch dimension is left open. No AutoGraph: the body has
# no control flow to convert, and the conversion costs a fresh process ~0.3 s.
_forward_slice: Callable[..., tuple[tf.Tensor, tf.Tensor]] = tf.function(
    _forward_slice_graph,
    autograph=False,
    input_signature=(
        tf.TensorSpec((IMAGE_PIXELS, NUM_CLASSES), tf.float32),
        tf.TensorSpec((NUM_CLASSES,), tf.float32),
        tf.TensorSpec((None, IMAGE_PIXELS), tf.uint8),
        tf.TensorSpec((None,), tf.int32),
    ),
)
