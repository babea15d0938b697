"""The validation split: which training images a run holds out, as a pure function of a seed.

NumPy only (the CLI and evaluation jobs use it too). With ``val_size = N > 0`` the held-out images
are the first ``N`` of ``numpy.random.default_rng((val_seed, 2)).permutation(n)`` (``n`` the
training split's size, 60,000 for Fashion-MNIST; a stream disjoint from the data order's and the
initial weights'); training draws its batches from the other ``n - N``. Both index sets are
returned sorted, so they depend on the seed alone. With ``val_size = 0`` nothing is held out and
training sees all ``n`` examples in the seed's order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.config import TRAIN_EXAMPLES

IndexArray = npt.NDArray[np.int32]

VALIDATION_STREAM = 2  # first word after the seed: 0 is the data order, 1 the initial weights


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Holdout:
    """Indices into the training split: the examples trained on and those held out."""

    train_indices: IndexArray  # sorted, read-only; all of them when nothing is held out
    val_indices: IndexArray  # sorted, read-only; empty when nothing is held out


@functools.lru_cache(maxsize=8)
def holdout(val_seed: int | None, val_size: int, n_examples: int = TRAIN_EXAMPLES) -> Holdout:
    """The training/validation partition of a run with ``val_size`` held-out examples out of
    the ``n_examples`` of its training split (60,000 for Fashion-MNIST).

    Raises:
        ValueError: ``val_size`` outside ``0 .. n_examples - 1``, or a seed missing while
            ``val_size > 0``.
    """
    if not 0 <= val_size < n_examples:
        raise ValueError(f"val_size {val_size} must be in 0..{n_examples - 1}")
    if val_size == 0:
        return Holdout(_frozen(np.arange(n_examples)), _frozen(np.empty(0)))
    if val_seed is None:
        raise ValueError("val_seed is needed to hold out images; resolve the config first")
    permutation = np.random.default_rng((val_seed, VALIDATION_STREAM)).permutation(n_examples)
    return Holdout(
        _frozen(np.sort(permutation[val_size:])), _frozen(np.sort(permutation[:val_size]))
    )


def _frozen(indices: npt.ArrayLike) -> IndexArray:
    array = np.asarray(indices, dtype=np.int32)
    array.flags.writeable = False
    return array
