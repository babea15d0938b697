"""The compiled training chunk: up to K SGD steps in one TensorFlow call, no Python per step.

The model is the notebook's, of any width: ``logits = x @ W + b`` with ``W`` of D x C and ``x``
the pixels divided by 255 (uint8 data) or the features as the job standardised them (float32
data), softmax cross-entropy, SGD. Inside the call a ``tf.while_loop`` takes, for each step, the
batch's indices (precomputed, see ``batches``), gathers the rows from the device-resident set,
computes the forward pass, the loss and accuracy *before* the update, the gradient, and the update

    g = x^T (softmax(logits) - onehot(y)) / B + l2 * W      (and the bias likewise, without l2)
    plain SGD:  W <- W - lr_s * g
    momentum:   v <- momentum * v + g;  W <- W - lr_s * v     (heavy ball, as in PyTorch)

then writes the step's loss and accuracy into TensorArrays. Gradients are written out by hand
rather than taken from a GradientTape: the log-softmax yields both the loss and ``softmax -
onehot``, and the tape's bookkeeping would only add ops to every step.

Internally ``W`` is held transposed, ``(C, D)`` (``(10, 784)``): both matmuls then produce wide
outputs, which XLA's CPU dot runs ~1.7x faster than the ``(784, 10)`` layout (measured, 128x784
batches).

A compiled function is specialised on ``ChunkShape`` only (device, batch size, steps per call,
momentum on/off, XLA on/off, D, C, feature kind, pack size); every other hyperparameter is a
tensor argument, so a warm worker reuses the same compiled code for every job of that shape,
and the last, shorter chunk of a run reuses it too (the loop bound ``n_steps`` is a tensor; the
unused tail of the outputs is ignored).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.data import IMAGE_PIXELS, NUM_CLASSES
from worker.tensorflow_import import tf


@dataclass(frozen=True)
class ChunkShape:
    """What a compiled chunk function is specialised on."""

    device: str  # tf.device name, e.g. "/CPU:0"
    batch_size: int
    steps_per_call: int  # K: the loop's maximum trip count and the outputs' length
    momentum: bool  # whether velocities are updated (False: plain SGD, velocities pass through)
    xla: bool  # compile with XLA (jit_compile) rather than as a plain graph
    features: int = IMAGE_PIXELS  # D
    classes: int = NUM_CLASSES  # C
    # "uint8": bytes on the device, cast and divided by 255 per batch (the seed's arithmetic);
    # "float32": features the job standardised once, used as they are.
    feature_kind: str = "uint8"
    # P: trials trained side by side on shared batches (``worker.training.packed_step``); 1 is a
    # single run, compiled by this module's own body.
    pack: int = 1


ChunkFn = Callable[..., Any]

#: Traces of the chunk body in this process. Python in a ``tf.function`` body runs only while
#: TensorFlow traces it, and a trace is what precedes every new compilation, so this counts the
#: set-up a job paid for rather than found done (``worker.cluster.warm_up``, the job's start-up
#: line).
_traces = [0]


def count_trace() -> None:
    """Count one trace of a chunk body (called from the bodies, so only while tracing)."""
    _traces[0] += 1


def traces_so_far() -> int:
    """How many times this process traced (and so compiled) a training chunk."""
    return _traces[0]


@functools.lru_cache(maxsize=16)
def chunk_function(shape: ChunkShape) -> ChunkFn:
    """The compiled chunk for ``shape``, built once per process and reused by every job.

    The returned function takes ``(images, labels, params, indices, rates, n_steps, l2,
    momentum)``: ``images`` ``(n, D)`` (uint8 or float32, as ``shape.feature_kind`` says) and
    ``labels`` int32 ``(n,)`` on the device; ``params`` the tuple ``(Wt (C, D), b (C,), vWt, vb)``
    float32; ``indices`` int32
    ``(K, B)``; ``rates`` float32 ``(K,)``; ``n_steps`` int32 (<= K steps to run); ``l2`` and
    ``momentum`` float32 scalars. It returns ``(params, losses (K,), accuracies (K,), finite)``
    where ``finite`` says whether the new weights are all finite; entries past ``n_steps`` are 0.
    """
    return compiled_chunk(_run_chunk, shape)


def compiled_chunk(body: Callable[..., Any], shape: ChunkShape) -> ChunkFn:
    """``body`` (a chunk's traced Python, taking ``shape=``) as a ``tf.function`` specialised on
    ``shape``: XLA when ``shape.xla``, else a plain graph."""
    # autograph=False: the body's loop is an explicit tf.while_loop and its one `if` is on a
    # Python bool, so AutoGraph's source-to-source conversion (~0.35 s of every new process's
    # first trace) would produce the very same graph (same nodes, ops and inputs, checked).
    function: ChunkFn = tf.function(
        functools.partial(body, shape=shape),
        jit_compile=shape.xla,
        reduce_retracing=False,
        autograph=False,
    )
    return function


def _run_chunk(
    images: tf.Tensor,
    labels: tf.Tensor,
    params: tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor],
    indices: tf.Tensor,
    rates: tf.Tensor,
    n_steps: tf.Tensor,
    l2: tf.Tensor,
    momentum: tf.Tensor,
    *,
    shape: ChunkShape,
) -> tuple[tuple[tf.Tensor, ...], tf.Tensor, tf.Tensor, tf.Tensor]:
    count_trace()  # tracing only (see traces_so_far)

    def step(i: tf.Tensor, *carried: Any) -> tuple[Any, ...]:
        weights_t, bias, vel_w, vel_b, losses, accuracies = carried
        rows = indices[i]
        if shape.feature_kind == "uint8":
            x = tf.cast(tf.gather(images, rows), tf.float32) / 255.0
        else:
            x = tf.gather(images, rows)
        loss, accuracy, grad_w, grad_b = _loss_and_gradients(
            x, tf.gather(labels, rows), weights_t, bias, l2, shape.classes
        )
        if shape.momentum:
            vel_w = momentum * vel_w + grad_w
            vel_b = momentum * vel_b + grad_b
            grad_w, grad_b = vel_w, vel_b
        rate = rates[i]
        return (
            i + 1,
            weights_t - rate * grad_w,
            bias - rate * grad_b,
            vel_w,
            vel_b,
            losses.write(i, loss),
            accuracies.write(i, accuracy),
        )

    k = shape.steps_per_call
    start = (
        tf.constant(0),
        *params,
        tf.TensorArray(tf.float32, size=k, element_shape=[]),
        tf.TensorArray(tf.float32, size=k, element_shape=[]),
    )
    _, weights_t, bias, vel_w, vel_b, losses, accuracies = tf.while_loop(
        lambda i, *_: i < n_steps, step, start, maximum_iterations=k
    )
    finite = tf.logical_and(
        tf.reduce_all(tf.math.is_finite(weights_t)), tf.reduce_all(tf.math.is_finite(bias))
    )
    return (weights_t, bias, vel_w, vel_b), losses.stack(), accuracies.stack(), finite


def _loss_and_gradients(
    x: tf.Tensor,
    y: tf.Tensor,
    weights_t: tf.Tensor,
    bias: tf.Tensor,
    l2: tf.Tensor,
    classes: int = NUM_CLASSES,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """One batch's mean loss and accuracy (before the update) and the gradients."""
    batch = tf.cast(tf.shape(x)[0], tf.float32)
    logits = tf.matmul(x, weights_t, transpose_b=True) + bias
    # Written out rather than the fused SparseSoftmaxCrossEntropyWithLogits op, whose GPU kernel
    # has no deterministic implementation; under XLA both compile to the same fused loops.
    log_probabilities = tf.nn.log_softmax(logits)
    per_example = -tf.gather(log_probabilities, y, batch_dims=1)
    softmax_minus_onehot = tf.exp(log_probabilities) - tf.one_hot(y, classes)
    correct = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y)
    grad_w = tf.matmul(softmax_minus_onehot, x, transpose_a=True) / batch + l2 * weights_t
    grad_b = tf.reduce_sum(softmax_minus_onehot, axis=0) / batch
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    return tf.reduce_mean(per_example), accuracy, grad_w, grad_b
