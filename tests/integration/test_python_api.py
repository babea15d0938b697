"""The Python API against a real cluster: one process submits, `trainq worker` processes train."""

from __future__ import annotations

import pytest
import trainq as sdk

from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

TINY = {"steps": 100, "chunk_steps": 100, "checkpoint_every_steps": 100}


def test_twenty_runs_submitted_from_one_process_each_train_exactly_once(cluster: Cluster) -> None:
    cluster.start_worker(worker_command())
    with sdk.Client(cluster.settings()) as client:
        assert not client.dispatcher.in_this_process
        runs = [client.submit(seed=seed, tags={"batch": "api"}, **TINY) for seed in range(10)]
        runs += client.submit_many([{"seed": seed, **TINY} for seed in range(10, 20)])
        assert all(run.status is sdk.RunStatus.QUEUED for run in runs)
        finished = client.wait_all([run.id for run in runs], timeout_s=300)
        assert [run.status for run in finished] == [sdk.RunStatus.SUCCEEDED] * 20
        assert [run.attempt for run in finished] == [1] * 20
        for run in finished:
            assert client.metrics(run.id).steps.tolist() == list(range(1, 101))
        assert len(client.runs(tags={"batch": "api"})) == 10


def test_a_cluster_client_refuses_to_store_a_run_when_the_broker_is_down(cluster: Cluster) -> None:
    cluster.broker_url = "redis://127.0.0.1:1/0"
    with sdk.Client(cluster.settings()) as client:
        with pytest.raises(sdk.BrokerUnavailableError, match=r"127\.0\.0\.1:1"):
            client.submit(seed=1, **TINY)
        assert client.runs() == []
