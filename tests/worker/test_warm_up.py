"""A job process's warm-up compiles, ahead of time, exactly what its first job would compile."""

from __future__ import annotations

import logging

import pytest

from tests.worker.test_idle_cpu import idle_threads_once_settled
from worker.cluster.celery_app import app
from worker.cluster.services import services
from worker.cluster.standby import JOB_SLOTS_CONF_KEY
from worker.cluster.warm_up import warm_up_job_process
from worker.config import TrainConfig
from worker.data import FashionMnist
from worker.training import prepare, train
from worker.training.step import traces_so_far


def test_prepare_compiles_the_chunk_so_that_a_run_of_that_shape_compiles_nothing(
    fashion_mnist: FashionMnist,
) -> None:
    # A batch size no other test uses: its chunk is not compiled in this process yet.
    config = TrainConfig(steps=600, chunk_steps=300, batch_size=77, seed=5).resolved()
    before = traces_so_far()

    prepare(config, fashion_mnist)
    prepared = traces_so_far()
    result = train(config, fashion_mnist)

    assert prepared == before + 1
    assert traces_so_far() == prepared
    assert result.completed and result.steps_run == 600


def test_a_warmed_up_process_trains_a_default_run_without_compiling(
    fashion_mnist: FashionMnist,
) -> None:
    try:
        assert warm_up_job_process()
    finally:
        services.cache_clear()  # built from this test's environment; leave none behind
    before = traces_so_far()

    train(TrainConfig(steps=500, seed=1).resolved(), fashion_mnist)

    assert traces_so_far() == before


def test_a_spare_warms_up_on_idle_cpu_and_keeps_no_idle_thread(
    fashion_mnist: FashionMnist, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Zero job slots: every process is a spare (a worker's second process finds one warm).
    monkeypatch.setitem(app.conf, JOB_SLOTS_CONF_KEY, 0)
    caplog.set_level(logging.INFO, logger="worker.cluster.warm_up")
    try:
        assert warm_up_job_process()
    finally:
        services.cache_clear()

    (line,) = [r.getMessage() for r in caplog.records if " warm in " in r.getMessage()]
    assert "; a spare, on idle CPU; waited " in line
    # The idle thread ended with the warm-up.
    assert idle_threads_once_settled([]) == []
