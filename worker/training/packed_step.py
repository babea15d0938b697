"""The packed chunk: P trials' SGD steps in one compiled call, every batch shared by all of them.

Trials of one sweep that share the batch size, the data order (seed) and the held-out split read
the very same batch at every step, so one gather serves them all and their two products become
one wide product each:

    logits (B, R) = x (B, D) @ [W1 ... WP 0]^T          (W held transposed, (R, D))
    grad   (R, D) = [softmax - onehot 0]^T (R, B) @ x (B, D)

Every other operation is the single-trial step's (``worker.training.step``), element by element,
with each trial's learning rate, L2 and momentum as a per-row vector instead of a scalar: the
hyperparameters that differ inside a pack are tensors, so one compiled function serves every
pack of its shape. A trial whose rate is 0 is *parked*: ``W - 0 * g`` is ``W`` exactly, so its
weights stay as they were while its pack-mates train (how a trial that ended leaves a pack until
the pack is compacted, ``worker.training.pack``).

Whether a trial's numbers depend on its pack: the products' sums over D and B run in the same
order for every trial of a pack, whichever its seat and its mates, once the weights' rows are
padded (``worker.pack_plan.packed_rows``: ``R >= P*C`` rows, the spare ones zero and never
trained), which ``tests/worker/test_packed_training.py`` checks bit for bit. They may differ
between widths: a pack's widths are fixed when its sweep is planned (``worker.training.pack``).
"""

from __future__ import annotations

import functools
from typing import Any

from worker.pack_plan import packed_rows
from worker.tensorflow_import import tf
from worker.training.step import ChunkFn, ChunkShape, compiled_chunk, count_trace


@functools.lru_cache(maxsize=16)
def packed_chunk_function(shape: ChunkShape) -> ChunkFn:
    """The compiled packed chunk for ``shape`` (``shape.pack`` trials), built once per process.

    The returned function takes ``(images, labels, params, indices, rates, n_steps, l2,
    momentum)``: ``images`` ``(n, D)`` and ``labels`` ``(n,)`` as for one trial; ``params`` the
    tuple ``(Wt (R, D), b (P, C), vWt (R, D), vb (P, C))`` float32 (``R = packed_rows(P, C)``),
    trial ``p`` owning rows ``p*C .. p*C+C-1``, the rows after ``P*C`` zero; ``indices`` int32
    ``(S, B)`` shared by every trial; ``rates`` float32 ``(S, P)``: step ``i``'s rate of each
    trial (0 parks it); ``n_steps`` int32 (<= S); ``l2`` and ``momentum`` float32 ``(P,)``. It
    returns ``(params, losses (S, P), accuracies (S, P), finite (P,))``, ``finite[p]`` saying
    whether trial ``p``'s new weights are all finite.
    """
    return compiled_chunk(_run_packed_chunk, shape)


def _run_packed_chunk(
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
    count_trace()
    pack, classes = shape.pack, shape.classes
    seat_rows = pack * classes
    spare = [[0, packed_rows(pack, classes) - seat_rows]]  # rows of no seat: zero, never trained

    def per_row(values: tf.Tensor) -> tf.Tensor:
        """A per-trial vector as a column over Wt's rows (row r belongs to trial r // C)."""
        return tf.pad(tf.repeat(values, classes), spare)[:, None]

    l2_rows, momentum_rows = per_row(l2), per_row(momentum)

    def step(i: tf.Tensor, *carried: Any) -> tuple[Any, ...]:
        weights_t, bias, vel_w, vel_b, losses, accuracies = carried
        rows = indices[i]
        if shape.feature_kind == "uint8":
            x = tf.cast(tf.gather(images, rows), tf.float32) / 255.0
        else:
            x = tf.gather(images, rows)
        y = tf.gather(labels, rows)
        batch = tf.cast(tf.shape(x)[0], tf.float32)
        products = tf.matmul(x, weights_t, transpose_b=True)[:, :seat_rows]
        logits = tf.reshape(products, (-1, pack, classes)) + bias
        log_probabilities = tf.nn.log_softmax(logits)  # (B, P, C)
        per_example = -tf.gather(log_probabilities, y, axis=2, batch_dims=1)  # (B, P)
        softmax_minus_onehot = tf.exp(log_probabilities) - tf.one_hot(y, classes)[:, None, :]
        correct = tf.equal(tf.argmax(logits, axis=2, output_type=tf.int32), y[:, None])
        wide = tf.pad(tf.reshape(softmax_minus_onehot, (-1, seat_rows)), [[0, 0], *spare])
        grad_w = tf.matmul(wide, x, transpose_a=True) / batch + l2_rows * weights_t
        grad_b = tf.reduce_sum(softmax_minus_onehot, axis=0) / batch
        if shape.momentum:
            vel_w = momentum_rows * vel_w + grad_w
            vel_b = momentum[:, None] * vel_b + grad_b
            grad_w, grad_b = vel_w, vel_b
        rate = rates[i]
        return (
            i + 1,
            weights_t - per_row(rate) * grad_w,
            bias - rate[:, None] * grad_b,
            vel_w,
            vel_b,
            losses.write(i, tf.reduce_mean(per_example, axis=0)),
            accuracies.write(i, tf.reduce_mean(tf.cast(correct, tf.float32), axis=0)),
        )

    k = shape.steps_per_call
    start = (
        tf.constant(0),
        *params,
        tf.TensorArray(tf.float32, size=k, element_shape=[pack]),
        tf.TensorArray(tf.float32, size=k, element_shape=[pack]),
    )
    _, weights_t, bias, vel_w, vel_b, losses, accuracies = tf.while_loop(
        lambda i, *_: i < n_steps, step, start, maximum_iterations=k
    )
    finite_rows = tf.reduce_all(tf.math.is_finite(weights_t[:seat_rows]), axis=1)
    finite = tf.logical_and(
        tf.reduce_all(tf.reshape(finite_rows, (pack, classes)), axis=1),
        tf.reduce_all(tf.math.is_finite(bias), axis=1),
    )
    return (weights_t, bias, vel_w, vel_b), losses.stack(), accuracies.stack(), finite
