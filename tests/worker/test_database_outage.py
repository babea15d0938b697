"""A database outage mid-run is not the run's fault: the job waits it out, or hands the run back
without spending an attempt.

The job reaches the real PostgreSQL through a TCP proxy that the test cuts for a while, so the
database goes away for this job only (the shared server keeps running). Its ``Database`` gives up
retrying after 1 s on its own; the lease, not that deadline, must decide how long the job waits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from storage import Database, JobKind, Repository, RunStatus, Settings
from storage.records import AttemptOutcome
from tests.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_postgres,
)
from tests.tcp_proxy import TcpProxy
from worker.config import TrainConfig
from worker.data import FashionMnist
from worker.jobs import JobContext, execute_job

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CONFIG = TrainConfig(steps=6_000, chunk_steps=500, checkpoint_every_steps=2_000, seed=5)
#: The outage starts once this many steps are recorded: mid-run, between two checkpoints.
OUTAGE_AFTER_STEP = 2_500


@pytest.fixture(scope="module")
def database_name() -> Iterator[str]:
    require_postgres()
    name = f"trainq_test_outage_{os.getpid()}"
    create_postgres_database(name)
    Database(postgres_url(name)).upgrade()
    yield name
    drop_postgres_database(name)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy((POSTGRES_HOST, POSTGRES_PORT)) as forwarder:
        yield forwarder


def job_context(
    database_name: str, proxy: TcpProxy, tmp_path: Path, lease_ttl_s: float
) -> JobContext:
    url = postgres_url(database_name).replace(f":{POSTGRES_PORT}/", f":{proxy.port}/")
    repository = Repository(Database(url, retry_deadline_s=1.0))
    settings = Settings(
        home_dir=tmp_path, database_url=url, broker_url=None, data_dir=None, lease_ttl_s=lease_ttl_s
    )
    return JobContext.for_this_process(repository, settings, "outage-test")


def new_run(repository: Repository, *, max_attempts: int) -> int:
    return repository.create_run(
        kind=JobKind.TRAIN,
        config=CONFIG.model_dump(mode="json"),
        seed=CONFIG.seed_value,
        queue="train",
        max_attempts=max_attempts,
    ).id


def cut_mid_run(
    proxy: TcpProxy, direct: Repository, run_id: int, outage_s: float
) -> threading.Thread:
    """Cut the job's link to the database for ``outage_s`` once the run is past
    ``OUTAGE_AFTER_STEP`` (watched over a direct connection)."""

    def outage() -> None:
        deadline = time.monotonic() + 300
        while direct.get_run(run_id).steps_done < OUTAGE_AFTER_STEP:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proxy.cut()
        time.sleep(outage_s)
        proxy.restore()

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    return thread


def assert_steps_exactly_once(direct: Repository, run_id: int) -> None:
    steps, _, _ = direct.read_metric_arrays(run_id)
    np.testing.assert_array_equal(steps, np.arange(1, CONFIG.steps + 1))


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and "unreachable for" in record.getMessage()
    ]


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


def test_an_outage_shorter_than_the_lease_is_waited_out_and_the_run_succeeds_at_attempt_1(
    database_name: str,
    proxy: TcpProxy,
    fashion_mnist: FashionMnist,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    context = job_context(database_name, proxy, tmp_path, lease_ttl_s=10.0)
    direct = Repository(Database(postgres_url(database_name)))
    run_id = new_run(direct, max_attempts=1)
    outage = cut_mid_run(proxy, direct, run_id, outage_s=3.0)

    finished = execute_job(context, run_id)
    outage.join()

    assert finished is not None
    assert (finished.status, finished.attempt) == (RunStatus.SUCCEEDED, 1)
    assert [a.outcome for a in direct.list_attempts(run_id)] == [AttemptOutcome.SUCCEEDED]
    assert_steps_exactly_once(direct, run_id)
    (warning,) = outage_warnings(caplog)  # one line per outage, with its duration
    assert "waited it out within the 10 s lease" in warning
    assert_no_traceback(caplog)


def test_an_outage_longer_than_the_lease_hands_the_run_back_without_spending_its_attempt(
    database_name: str,
    proxy: TcpProxy,
    fashion_mnist: FashionMnist,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    context = job_context(database_name, proxy, tmp_path, lease_ttl_s=3.0)
    direct = Repository(Database(postgres_url(database_name)))
    run_id = new_run(direct, max_attempts=1)  # a spent attempt would leave none
    outage = cut_mid_run(proxy, direct, run_id, outage_s=8.0)

    handed_back = execute_job(context, run_id)
    outage.join()

    assert handed_back is not None
    assert (handed_back.status, handed_back.attempt) == (RunStatus.QUEUED, 0)
    stopped_at = handed_back.steps_done
    assert OUTAGE_AFTER_STEP <= stopped_at < CONFIG.steps
    checkpoint = direct.latest_checkpoint(run_id)
    assert checkpoint is not None and checkpoint.info.step == stopped_at  # nothing trained is lost
    (warning,) = outage_warnings(caplog)
    assert f"handed back at step {stopped_at:,} without spending attempt 1" in warning

    resumed = execute_job(context, run_id)  # the next claim, as the republished message makes

    assert resumed is not None
    assert (resumed.status, resumed.attempt) == (RunStatus.SUCCEEDED, 1)
    outcomes = [a.outcome for a in direct.list_attempts(run_id)]
    assert outcomes == [AttemptOutcome.HANDED_BACK, AttemptOutcome.SUCCEEDED]
    assert_steps_exactly_once(direct, run_id)
    assert_no_traceback(caplog)
