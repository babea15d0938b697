"""The validation split: deterministic, disjoint from training, and invisible when val_size is 0."""

from __future__ import annotations

import numpy as np
import pytest

from worker.config import TrainConfig
from worker.data import FashionMnist
from worker.errors import InvalidConfigError
from worker.holdout import holdout
from worker.training.batches import batch_indices, epoch_permutation
from worker.validation import Validator


def test_no_validation_split_keeps_the_seeds_batch_order_exactly() -> None:
    pool = holdout(None, 0).train_indices
    assert np.array_equal(pool, np.arange(60_000))
    assert np.array_equal(batch_indices(4, 128, 0, 500, pool), batch_indices(4, 128, 0, 500))
    first = np.random.default_rng((4, 0, 0)).permutation(60_000)[:128]
    assert np.array_equal(batch_indices(4, 128, 0, 1)[0], first)


def test_the_held_out_images_depend_on_the_validation_seed_alone() -> None:
    assert np.array_equal(holdout(11, 5_000).val_indices, holdout(11, 5_000).val_indices)
    assert not np.array_equal(holdout(11, 5_000).val_indices, holdout(12, 5_000).val_indices)
    split = holdout(11, 5_000)
    assert len(split.val_indices) == 5_000 and len(split.train_indices) == 55_000
    assert not np.intersect1d(split.val_indices, split.train_indices).size


def test_training_never_sees_a_held_out_image_over_several_epochs() -> None:
    split = holdout(5, 10_000)
    seen = batch_indices(9, 100, 0, 1_500, split.train_indices)  # 3 epochs of 500 batches
    assert not np.isin(seen, split.val_indices).any()
    assert np.unique(seen[:500]).size == 50_000  # one epoch covers every training image once


def test_each_epoch_permutes_only_the_images_left_for_training() -> None:
    assert sorted(epoch_permutation(3, 0, 50_000)) == list(range(50_000))


def test_a_resolved_config_records_the_validation_seed() -> None:
    config = TrainConfig(val_size=1_000, seed=42).resolved()
    assert config.val_seed == 42
    assert TrainConfig(seed=42).resolved().val_seed is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"val_size": -1}, "val_size"),
        ({"val_size": 60_000}, "val_size"),
        ({"val_size": 59_990, "batch_size": 128}, "batch_size"),
    ],
)
def test_a_validation_split_that_leaves_too_little_to_train_on_is_refused(
    fields: dict[str, int], field: str
) -> None:
    with pytest.raises(InvalidConfigError, match=field):
        _parse(fields)


def _parse(fields: dict[str, int]) -> TrainConfig:
    from worker.config import parse_train_config

    return parse_train_config(fields)


def test_a_worker_converts_the_held_out_images_once_for_every_trial_of_a_sweep(
    fashion_mnist: FashionMnist,
) -> None:
    weights = {"W": np.zeros((784, 10), np.float32), "b": np.zeros(10, np.float32)}
    trials = [
        TrainConfig(seed=7, val_size=2_000, learning_rate=lr).resolved() for lr in (0.1, 0.01)
    ]
    first, second = (Validator(fashion_mnist, config) for config in trials)
    assert first.measure(weights) == second.measure(weights)
    assert first._images is second._images  # the same converted arrays, not a second copy
    other = Validator(fashion_mnist, TrainConfig(seed=8, val_size=2_000).resolved())
    assert other._images is not first._images
