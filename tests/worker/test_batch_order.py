"""The data order and the learning-rate schedule are pure functions of the config and the step."""

from __future__ import annotations

import numpy as np

from worker.config import Schedule
from worker.training.batches import (
    batch_indices,
    batches_per_epoch,
    epoch_permutation,
    learning_rates,
)


def test_each_epoch_is_a_permutation_of_the_training_set() -> None:
    first, second = epoch_permutation(3, 0), epoch_permutation(3, 1)
    assert np.array_equal(np.sort(first), np.arange(60_000))
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, epoch_permutation(4, 0))


def test_batch_s_is_the_matching_slice_of_its_epochs_permutation() -> None:
    per_epoch = batches_per_epoch(128)
    assert per_epoch == 468  # the last 96 examples of each epoch's permutation are dropped
    rows = batch_indices(3, 128, per_epoch - 2, 4)  # the last two of epoch 0, first two of 1
    assert np.array_equal(rows[0], epoch_permutation(3, 0)[466 * 128 : 467 * 128])
    assert np.array_equal(rows[2], epoch_permutation(3, 1)[:128])
    assert np.array_equal(rows[3], epoch_permutation(3, 1)[128:256])


def test_batches_do_not_depend_on_where_a_call_starts() -> None:
    whole = batch_indices(5, 100, 0, 1_500)
    pieces = np.concatenate([batch_indices(5, 100, s, 250) for s in range(0, 1_500, 250)])
    assert np.array_equal(whole, pieces)


def test_an_epoch_never_repeats_an_example() -> None:
    epoch = batch_indices(9, 128, 0, batches_per_epoch(128))
    assert len(np.unique(epoch)) == epoch.size


def test_the_whole_training_set_as_one_batch_is_one_epoch_per_step() -> None:
    rows = batch_indices(1, 60_000, 0, 2)
    assert np.array_equal(rows[1], epoch_permutation(1, 1))


def test_cosine_starts_at_the_rate_and_decays_towards_zero() -> None:
    rates = learning_rates(0.5, Schedule.COSINE, 1_000, 0, 1_000)
    assert rates.dtype == np.float32
    assert rates[0] == np.float32(0.5)
    assert np.all(np.diff(rates) < 0)
    assert 0 < rates[-1] < 1e-5
    assert np.array_equal(rates[400:500], learning_rates(0.5, Schedule.COSINE, 1_000, 400, 100))
    assert np.all(learning_rates(0.5, Schedule.CONSTANT, 1_000, 7, 3) == np.float32(0.5))
