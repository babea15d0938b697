"""Many weight sets in one pass over a split give each set the result it gets alone.

A real short run on the real Fashion-MNIST, checkpointed every 50 steps, in a real SQLite store;
its checkpoints are evaluated one by one (``worker.evaluation.evaluate``, today's path) and in
one pack (``worker.packed_evaluation``), through the function and through the evaluation jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits

from storage import Database, JobKind, Repository, RunStatus
from storage.records import EvaluationJobRecord, EvaluationRecord
from tests.worker.test_any_width import recipe, settings_in, store, submit, version_of
from worker.config import TrainConfig
from worker.data import FashionMnist
from worker.errors import IncompatibleWeightsError
from worker.evaluation import EvaluationResult, evaluate
from worker.evaluation_job import execute_evaluation_job
from worker.jobs import JobContext, execute_job
from worker.packed_evaluation import evaluate_many, pack_plan
from worker.training.state import FASHION_MNIST_DIMS

STEPS, EVERY = 300, 50
#: Packed against alone: the wide product rounds its float32 sums differently (module docstring
#: of worker.packed_evaluation); the mean loss agrees far closer than this.
LOSS_RTOL = 1e-6

Arrays = Mapping[str, Any]


class Store:
    """A SQLite store holding one finished Fashion-MNIST run and one finished digits run."""

    def __init__(self, root: Path) -> None:
        database = Database(f"sqlite:///{root / 'trainq.db'}")
        database.upgrade()
        self.root = root
        self.repository = Repository(database)
        config = TrainConfig(
            steps=STEPS, chunk_steps=EVERY, checkpoint_every_steps=EVERY, seed=5, xla=False
        )
        self.run_id = submit(self.repository, config)
        table = load_digits()
        version, split = version_of(table.data, table.target, tuple(map(str, range(10))))
        sha256 = store(self.repository, "digits", version)
        digits = recipe(
            sha256, "digits@1", len(split[2]), steps=100, chunk_steps=50, checkpoint_every_steps=50
        )
        self.digits_run_id = submit(self.repository, digits)
        for run_id in (self.run_id, self.digits_run_id):
            finished = execute_job(self.context(), run_id)
            assert finished is not None and finished.status is RunStatus.SUCCEEDED, finished

    def context(self) -> JobContext:
        return JobContext.for_this_process(self.repository, settings_in(self.root), "test")

    def weights(self) -> list[Arrays]:
        """The run's checkpoints' arrays, oldest first."""
        infos = self.repository.list_checkpoints(self.run_id)
        return [self.repository.get_checkpoint(self.run_id, i.step).arrays for i in infos]

    def job(self, step: int, *, run_id: int | None = None, split: str = "test") -> int:
        return self.repository.create_evaluation_job(
            run_id=run_id or self.run_id,
            checkpoint_step=step,
            split=split,
            queue="eval",
            max_attempts=3,
        ).id

    def status(self, job_id: int) -> EvaluationJobRecord:
        return self.repository.get_evaluation_job(job_id)

    def result(self, job_id: int) -> EvaluationRecord:
        found = self.repository.get_evaluation_for_job(job_id)
        assert found is not None, self.status(job_id)
        return found


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, fashion_mnist: FashionMnist) -> Store:
    return Store(tmp_path_factory.mktemp("packed"))


def assert_same(packed: EvaluationResult, alone: EvaluationResult) -> None:
    assert packed.n_examples == alone.n_examples
    assert np.array_equal(packed.confusion, alone.confusion)
    assert packed.accuracy == alone.accuracy
    assert packed.per_class_accuracy == alone.per_class_accuracy
    assert packed.loss == pytest.approx(alone.loss, rel=LOSS_RTOL)


def test_a_pack_of_checkpoints_gives_each_the_result_it_gets_alone(
    trained: Store, fashion_mnist: FashionMnist
) -> None:
    weights = trained.weights()
    assert len(weights) == STEPS // EVERY
    images, labels = fashion_mnist.test_images, fashion_mnist.test_labels
    alone = [evaluate(arrays, images, labels) for arrays in weights]
    wrong = {"W": np.zeros((30, 2), np.float32), "b": np.zeros(2, np.float32)}

    packed = evaluate_many([*weights[:3], wrong, *weights[3:]], images, labels)

    assert isinstance(packed[3], IncompatibleWeightsError)
    assert "shape (30, 2), expected (784, 10)" in str(packed[3])
    results = [outcome for outcome in packed if isinstance(outcome, EvaluationResult)]
    assert len(results) == len(alone)
    for one, reference in zip(results, alone, strict=True):
        assert_same(one, reference)
    assert len({result.loss for result in results}) == len(results)  # six different weight sets


def test_a_pack_of_one_is_bit_identical_to_todays_evaluation(
    trained: Store, fashion_mnist: FashionMnist
) -> None:
    arrays = trained.weights()[-1]
    images, labels = fashion_mnist.test_images, fashion_mnist.test_labels
    (packed,) = evaluate_many([arrays], images, labels)
    alone = evaluate(arrays, images, labels)
    assert isinstance(packed, EvaluationResult)
    assert packed.loss == alone.loss and np.array_equal(packed.confusion, alone.confusion)


def test_a_small_budget_splits_the_pack_and_the_slices_with_the_same_results(
    trained: Store, fashion_mnist: FashionMnist
) -> None:
    weights = trained.weights()
    per_set = 4 * 10 * (784 + 1)
    plan = pack_plan(FASHION_MNIST_DIMS, len(weights), weight_budget_bytes=2 * per_set)
    assert plan.sets_per_pack == 2
    images, labels = fashion_mnist.test_images, fashion_mnist.test_labels

    split = evaluate_many(
        weights, images, labels, weight_budget_bytes=2 * per_set, slice_budget_bytes=80 * 1024
    )
    whole = evaluate_many(weights, images, labels)

    for small, large in zip(split, whole, strict=True):
        assert isinstance(small, EvaluationResult) and isinstance(large, EvaluationResult)
        assert_same(small, large)


def test_memory_of_a_pass_is_bounded_whatever_the_number_of_sets() -> None:
    plan = pack_plan(FASHION_MNIST_DIMS, 1_000_000)
    assert plan.sets_per_pack == 2137  # 64 MiB of 784 x 10 weights and biases
    assert plan.peak_bytes(FASHION_MNIST_DIMS) < 250 * 1024**2
    assert pack_plan(FASHION_MNIST_DIMS, 100) == pack_plan(FASHION_MNIST_DIMS, 100)
    assert pack_plan(FASHION_MNIST_DIMS, 1).rows_per_slice == 10_000  # today's slice


def test_jobs_dispatched_together_share_one_pass_and_each_stores_its_own_row(
    trained: Store, fashion_mnist: FashionMnist, caplog: pytest.LogCaptureFixture
) -> None:
    steps = [info.step for info in trained.repository.list_checkpoints(trained.run_id)]
    jobs = [trained.job(step) for step in steps]
    missing = trained.job(STEPS + EVERY)  # a checkpoint the run does not have
    other_width = trained.job(100, run_id=trained.digits_run_id)
    mates = [*jobs, missing, other_width]
    alone = [
        evaluate(arrays, fashion_mnist.test_images, fashion_mnist.test_labels)
        for arrays in trained.weights()
    ]

    with caplog.at_level(logging.INFO, logger="worker.evaluation_riders"):
        lead = execute_evaluation_job(trained.context(), jobs[0], mates=mates)

    assert lead is not None and lead.status is RunStatus.SUCCEEDED
    assert (
        f"eval {jobs[0]}: evaluating with {len(jobs) - 1} other job(s) in one pass" in caplog.text
    )
    for job_id, step, reference in zip(jobs, steps, alone, strict=True):
        stored = trained.result(job_id)
        assert trained.status(job_id).status is RunStatus.SUCCEEDED
        assert (stored.run_id, stored.checkpoint_step, stored.split) == (
            trained.run_id,
            step,
            "test",
        )
        assert stored.accuracy == reference.accuracy
        assert stored.confusion == reference.confusion.tolist()
        assert stored.loss == pytest.approx(reference.loss, rel=LOSS_RTOL)
    failed = trained.status(missing)
    assert failed.status is RunStatus.FAILED and f"no checkpoint at step {STEPS + EVERY}" in (
        failed.error or ""
    )
    assert trained.status(other_width).status is RunStatus.QUEUED  # other images: its own pass
    # Their own deliveries come later: the riders' are no-ops, the other width runs alone.
    assert execute_evaluation_job(trained.context(), jobs[1], mates=mates) is None
    alone_digits = execute_evaluation_job(trained.context(), other_width, mates=mates)
    assert alone_digits is not None and alone_digits.status is RunStatus.SUCCEEDED
    assert len(trained.result(other_width).confusion) == 10
    assert trained.status(jobs[1]).attempt == 1


def test_a_worker_takes_the_queued_jobs_on_the_same_images_from_the_database(
    trained: Store,
) -> None:
    first, second = trained.job(EVERY), trained.job(2 * EVERY)
    on_train = trained.job(EVERY, split="train")  # other images
    cancelled = trained.job(3 * EVERY)
    trained.repository.cancel_job(cancelled, kind=JobKind.EVAL)

    lead = execute_evaluation_job(trained.context(), first)  # mates None: any queued job

    assert lead is not None and lead.status is RunStatus.SUCCEEDED
    assert trained.status(second).status is RunStatus.SUCCEEDED
    assert trained.result(second).checkpoint_step == 2 * EVERY
    assert trained.status(on_train).status is RunStatus.QUEUED
    assert trained.status(cancelled).status is RunStatus.CANCELLED
    trained.repository.cancel_job(on_train, kind=JobKind.EVAL)


def test_riders_are_handed_back_unspent_when_the_pass_itself_fails(
    trained: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.packed_evaluation

    lead, rider = trained.job(EVERY), trained.job(2 * EVERY)

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise MemoryError("the pass could not allocate")

    monkeypatch.setattr(worker.packed_evaluation, "evaluate_many", broken)
    with pytest.raises(MemoryError):
        execute_evaluation_job(trained.context(), lead, mates=[lead, rider])

    handed_back = trained.status(rider)
    assert handed_back.status is RunStatus.QUEUED and handed_back.attempt == 0
    assert handed_back.lease_owner is None
