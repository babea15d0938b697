"""The data order and the learning-rate schedule: pure functions of the config and the step.

NumPy only, so that the order can be inspected and tested without TensorFlow.

Batch order. Each epoch ``e`` has its own permutation of the 60,000 training examples, drawn from
``numpy.random.default_rng((seed, 0, e))``: a function of ``(seed, e)`` alone, never of what ran
before, so a run resumed at any step sees exactly the batches the uninterrupted run would have.
An epoch holds ``floor(60000 / batch_size)`` batches; the remainder of each epoch's permutation is
dropped (a different remainder every epoch). Global step ``s`` (0-based) therefore reads

    epoch  e = s // batches_per_epoch
    batch  j = s %  batches_per_epoch
    indices  = permutation(seed, e)[j * batch_size : (j + 1) * batch_size]

Initial weights come from ``default_rng((seed, 1))``, a stream disjoint from the data order.

With a validation split (``worker.holdout``) the permutations run over the ``n`` images left for
training (``default_rng((seed, 0, e)).permutation(n)``), each position naming one of them, and an
epoch has ``n // batch_size`` batches; with nothing held out, ``n = 60000`` and the order is the
one above, unchanged.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from worker.config import TRAIN_EXAMPLES, Schedule

IndexArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]

DATA_ORDER_STREAM = 0  # first word after the seed: which random stream a draw belongs to
INIT_STREAM = 1


def batches_per_epoch(batch_size: int, n_examples: int = TRAIN_EXAMPLES) -> int:
    """Number of batches in one epoch (the remainder of the permutation is dropped)."""
    return n_examples // batch_size


@functools.lru_cache(maxsize=8)
def epoch_permutation(seed: int, epoch: int, n_examples: int = TRAIN_EXAMPLES) -> IndexArray:
    """The permutation of ``n_examples`` training examples used by ``epoch`` (read-only, int32).

    Cached: consecutive chunks of a run mostly read the same one or two epochs.
    """
    rng = np.random.default_rng((seed, DATA_ORDER_STREAM, epoch))
    permutation = rng.permutation(n_examples).astype(np.int32)
    permutation.flags.writeable = False
    return permutation


def batch_indices(
    seed: int,
    batch_size: int,
    first_step: int,
    n_steps: int,
    pool: IndexArray | None = None,
    *,
    n_examples: int = TRAIN_EXAMPLES,
) -> IndexArray:
    """Training-example indices of steps ``first_step .. first_step + n_steps - 1`` (0-based).

    Args:
        seed: the run's seed.
        batch_size: examples per step.
        first_step: the first step, 0-based.
        n_steps: how many steps.
        pool: the indices of the examples training may use (``Holdout.train_indices``); None
            for all ``n_examples``.
        n_examples: the training split's size (60,000 for Fashion-MNIST).

    Returns:
        int32 array of shape ``(n_steps, batch_size)``; row ``i`` is step ``first_step + i``.
    """
    n_examples = n_examples if pool is None else len(pool)
    per_epoch = batches_per_epoch(batch_size, n_examples)
    out = np.empty((n_steps, batch_size), dtype=np.int32)
    done = 0
    while done < n_steps:
        epoch, batch = divmod(first_step + done, per_epoch)
        take = min(per_epoch - batch, n_steps - done)
        permutation = epoch_permutation(seed, epoch, n_examples)
        rows = permutation[batch * batch_size : (batch + take) * batch_size]
        out[done : done + take] = rows.reshape(take, batch_size)
        done += take
    return out if pool is None else pool[out]


def learning_rates(
    learning_rate: float, schedule: Schedule, total_steps: int, first_step: int, n_steps: int
) -> FloatArray:
    """Learning rate of each step ``first_step .. first_step + n_steps - 1`` (0-based), float32.

    ``constant``: ``learning_rate`` throughout. ``cosine``: ``learning_rate * (1 + cos(pi * s /
    total_steps)) / 2`` at step ``s``, so the first step uses the full rate and the rate would
    reach 0 right after the last step. Computed in float64, then rounded once to float32.
    """
    if schedule is Schedule.CONSTANT:
        return np.full(n_steps, learning_rate, dtype=np.float32)
    steps = np.arange(first_step, first_step + n_steps, dtype=np.float64)
    rates = learning_rate * 0.5 * (1.0 + np.cos(math.pi * steps / total_steps))
    return rates.astype(np.float32)
