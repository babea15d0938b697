"""Evaluate many weight sets in one pass over a split: one product per slice against all of them.

A weight set of the logistic regression is ``W`` (D, C) and ``b`` (C,). K sets side by side are
one ``(D, K*C)`` matrix, so the logits of every set on a slice of examples are one product
``x @ [W1 ... WK] + [b1 ... bK]``: one wide matmul that keeps a core's vector units busy, where K
products of 10 columns each leave them mostly idle and pay the dispatch K times. The per-example
losses and predictions come back to NumPy per slice, which sums the losses in float64 and counts
each set's confusion matrix exactly, as :func:`worker.evaluation.evaluate` does for one set.

Same arithmetic as :func:`~worker.evaluation.evaluate` (TensorFlow, pixels / 255 in float32,
sparse softmax cross-entropy, same device choice and op determinism), but not bit-for-bit: the
matmul kernel blocks its sums over D differently for 10 and for K*10 columns, so a logit differs
from the one-set product by float32 rounding (measured on Fashion-MNIST: at most ~2e-6 on logits
of magnitude ~10). A mean loss then agrees to ~1e-7 relative; a prediction can differ only
where a set's two best logits are that close, which the tests on real checkpoints never met.

Memory is bounded whatever K (see :func:`pack_plan`): the stacked weights of one pack stay within
``weight_budget_bytes`` (more sets are evaluated as several packs, one after another, each one
pass over the split), and one slice's logits within ``slice_budget_bytes``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.config import Device
from worker.errors import IncompatibleWeightsError
from worker.evaluation import (
    EVALUATION_BATCH,
    EVALUATION_BATCH_BYTES,
    EvaluationResult,
    checked_split,
    result_of,
)
from worker.tensorflow_import import tf
from worker.training.runtime import configure_tensorflow, resolve_device
from worker.training.state import FASHION_MNIST_DIMS, WEIGHT_NAMES, ModelDims, check_weights
from worker.training_data import FeatureKind

#: Stacked weights of one pack at most (float32 D x K*C plus the biases): 64 MiB is 2,140 sets
#: of Fashion-MNIST's 784 x 10. More sets are evaluated as several packs.
PACK_WEIGHT_BYTES = 64 * 1024**2
#: One slice's float32 logits at most (examples x K*C); the cross-entropy holds about two more
#: arrays of that size while it runs.
SLICE_LOGITS_BYTES = 32 * 1024**2
#: Sets in one pack at most, whatever their width: bounds the per-slice arrays of tiny models.
MAX_SETS_PER_PACK = 4096

#: A set's outcome: its metrics, or why its weights do not fit the data (that set only).
Outcome = EvaluationResult | IncompatibleWeightsError


@dataclass(frozen=True)
class PackPlan:
    """How many sets go into one pass and how many examples into one product."""

    sets_per_pack: int
    rows_per_slice: int

    def peak_bytes(self, dims: ModelDims) -> int:
        """Memory of one pass at most: stacked weights, one slice's float32 inputs, its logits
        with the cross-entropy's two temporaries of that size, and its losses and predictions."""
        sets, rows = self.sets_per_pack, self.rows_per_slice
        weights = 4 * sets * dims.classes * (dims.features + 1)
        return weights + 4 * rows * (dims.features + 3 * sets * dims.classes + 2 * sets)


def pack_plan(
    dims: ModelDims,
    n_sets: int,
    *,
    weight_budget_bytes: int = PACK_WEIGHT_BYTES,
    slice_budget_bytes: int = SLICE_LOGITS_BYTES,
) -> PackPlan:
    """The pack size and slice size for ``n_sets`` weight sets of width ``dims``.

    A pack holds as many sets as fit ``weight_budget_bytes`` (at least one); a slice as many
    examples as keep its logits within ``slice_budget_bytes`` and its inputs within
    :data:`~worker.evaluation.EVALUATION_BATCH_BYTES` (at least one, at most
    :data:`~worker.evaluation.EVALUATION_BATCH`, the one-set evaluation's slice).
    """
    per_set = 4 * dims.classes * (dims.features + 1)
    sets = max(1, min(n_sets, MAX_SETS_PER_PACK, weight_budget_bytes // per_set))
    rows = min(
        EVALUATION_BATCH,
        EVALUATION_BATCH_BYTES // (4 * dims.features),
        slice_budget_bytes // (4 * sets * dims.classes),
    )
    return PackPlan(sets_per_pack=sets, rows_per_slice=max(1, rows))


def evaluate_many(
    weight_sets: Sequence[Mapping[str, npt.ArrayLike]],
    features: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    labels: npt.ArrayLike,
    *,
    dims: ModelDims = FASHION_MNIST_DIMS,
    feature_kind: FeatureKind = FeatureKind.UINT8,
    dataset: str | None = None,
    device: Device = Device.AUTO,
    weight_budget_bytes: int = PACK_WEIGHT_BYTES,
    slice_budget_bytes: int = SLICE_LOGITS_BYTES,
) -> list[Outcome]:
    """Evaluate every weight set on every given example, in packs, one pass over them per pack.

    Args:
        weight_sets: Each a checkpoint's arrays (``W`` (D, C) and ``b`` (C,); others ignored).
        features: ``(n, D)`` as for :func:`worker.evaluation.evaluate`.
        labels: ``(n,)`` classes in 0..C-1.
        dims: The data's width; a set of another width gets its error, the others go on.
        feature_kind: How ``features`` become the model's inputs.
        dataset: How messages name the data.
        device: Where to run the products.
        weight_budget_bytes: Stacked weights of one pack at most (see :func:`pack_plan`).
        slice_budget_bytes: One slice's logits at most.

    Returns:
        One outcome per set, in order: its result, or the ``IncompatibleWeightsError`` that
        says why its weights do not fit.

    Raises:
        DeviceUnavailableError: when ``device`` is ``gpu`` and there is none.
        ValueError: when features and labels do not match or the split is empty.
    """
    inputs, truth = checked_split(features, labels, dims, feature_kind)
    outcomes: list[Outcome | None] = [None] * len(weight_sets)
    fitting: list[int] = []
    for index, arrays in enumerate(weight_sets):
        try:
            check_weights(arrays, WEIGHT_NAMES, dims, dataset=dataset)
            fitting.append(index)
        except IncompatibleWeightsError as exc:
            outcomes[index] = exc
    if fitting:
        configure_tensorflow()
        resolved = resolve_device(device)
        plan = pack_plan(
            dims,
            len(fitting),
            weight_budget_bytes=weight_budget_bytes,
            slice_budget_bytes=slice_budget_bytes,
        )
        forward = _packed_slice(dims.features, dims.classes, feature_kind)
        for start in range(0, len(fitting), plan.sets_per_pack):
            members = fitting[start : start + plan.sets_per_pack]
            losses, confusions = _one_pass(
                forward, [weight_sets[i] for i in members], inputs, truth, plan, resolved.name
            )
            for slot, index in enumerate(members):
                outcomes[index] = result_of(
                    float(losses[slot] / len(truth)), confusions[slot], resolved.label
                )
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


_SliceFn = Callable[..., tuple[tf.Tensor, tf.Tensor]]


def _one_pass(
    forward: _SliceFn,
    weight_sets: Sequence[Mapping[str, npt.ArrayLike]],
    inputs: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    truth: npt.NDArray[np.int64],
    plan: PackPlan,
    device_name: str,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Summed float64 losses ``(K,)`` and confusion matrices ``(K, C, C)`` of one pack."""
    sets = len(weight_sets)
    classes = int(np.shape(weight_sets[0]["b"])[0])  # every set was checked against the data
    loss_sums = np.zeros(sets, np.float64)
    counts = np.zeros(sets * classes * classes, np.int64)
    # Set k's confusion cell (true t, predicted p) is bin (k*C + t)*C + p of one bincount.
    set_offsets = np.arange(sets, dtype=np.int64) * classes
    with tf.device(device_name):
        weights = tf.constant(
            np.concatenate([np.asarray(s["W"], dtype=np.float32) for s in weight_sets], axis=1)
        )
        bias = tf.constant(
            np.concatenate([np.asarray(s["b"], dtype=np.float32) for s in weight_sets])
        )
        for start in range(0, len(inputs), plan.rows_per_slice):
            stop = start + plan.rows_per_slice
            rows = truth[start:stop]
            loss, predicted = forward(weights, bias, inputs[start:stop], rows.astype(np.int32))
            loss_sums += loss.numpy().astype(np.float64).sum(axis=0)
            cells = ((set_offsets[None, :] + rows[:, None]) * classes) + predicted.numpy()
            counts += np.bincount(cells.ravel(), minlength=counts.size)
    return loss_sums, counts.reshape(sets, classes, classes)


def _packed_slice_graph(
    weights: tf.Tensor, bias: tf.Tensor, features: tf.Tensor, labels: tf.Tensor, classes: int
) -> tuple[tf.Tensor, tf.Tensor]:
    # The one-set forward pass (worker.evaluation) with K sets side by side: one product for all.
    inputs = tf.cast(features, tf.float32) / 255.0 if features.dtype == tf.uint8 else features
    logits = tf.matmul(inputs, weights) + bias  # (rows, K*C)
    per_set = tf.reshape(logits, [tf.shape(logits)[0], -1, classes])  # (rows, K, C)
    every_set = tf.broadcast_to(labels[:, None], tf.shape(per_set)[:2])
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=every_set, logits=per_set)
    return loss, tf.argmax(per_set, axis=2, output_type=tf.int32)  # both (rows, K)


@functools.lru_cache(maxsize=8)
def _packed_slice(features: int, classes: int, feature_kind: FeatureKind) -> _SliceFn:
    """The packed forward pass for one width and feature kind, traced once per process.

    Pack size and slice size are left open, so one trace serves every K and every slice.
    """
    dtype = tf.uint8 if feature_kind is FeatureKind.UINT8 else tf.float32
    function: _SliceFn = tf.function(
        functools.partial(_packed_slice_graph, classes=classes),
        autograph=False,
        input_signature=(
            tf.TensorSpec((features, None), tf.float32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((None, features), dtype),
            tf.TensorSpec((None,), tf.int32),
        ),
    )
    return function
