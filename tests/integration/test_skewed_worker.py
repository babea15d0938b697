"""A real `trainq worker` whose clock is ten minutes off (libfaketime) judges leases by the
database's clock: ahead, its reconciler leaves a live run alone; behind, it still moves a dead
run on. The runs are claimed by "workers" that exist only as rows (an owner elsewhere), and a
dead one is out of attempts, so the reconciler ends it FAILED and no job trains."""

from __future__ import annotations

import time

import pytest

from storage import Database, Repository
from storage.records import RunRecord, RunStatus
from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster
from tests.skewed_clock import require_faketime, skewed_environment
from tests.storage.support import execute_sql, new_run

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

TEN_MINUTES_S = 600
LIVE_LEASE_S = 300.0


def claimed_elsewhere(repository: Repository, owner: str, *, max_attempts: int) -> RunRecord:
    """A run held by ``owner``, a worker on another host, with a fresh lease."""
    run = new_run(repository, max_attempts=max_attempts)
    claimed = repository.claim_run(
        run.id, owner=owner, worker_host=owner.partition(":")[0], lease_ttl_s=LIVE_LEASE_S
    )
    assert claimed is not None
    return claimed


def died(cluster: Cluster, run: RunRecord) -> None:
    """The run's worker died: its lease ran out a second ago by the database's clock."""
    execute_sql(
        Database(cluster.database_url),
        "UPDATE runs SET lease_expires_at = now() - interval '1 second' WHERE id = ?",
        (run.id,),
    )


def wait_until_failed(repository: Repository, run_id: int, timeout_s: float = 90) -> RunRecord:
    deadline = time.monotonic() + timeout_s
    while (run := repository.get_run(run_id)).status is RunStatus.RUNNING:
        assert time.monotonic() < deadline, f"run {run_id} still RUNNING: {run}"
        time.sleep(0.2)
    return run


def start_skewed_worker(cluster: Cluster, offset_s: int) -> None:
    require_faketime()
    cluster.extra_env.update(skewed_environment(offset_s, base={}))
    cluster.start_worker(worker_command())


def test_a_worker_ten_minutes_ahead_leaves_a_live_run_to_its_owner(cluster: Cluster) -> None:
    repository = cluster.repository()
    live = claimed_elsewhere(repository, "host-a:1:live", max_attempts=3)
    # Judged after the live run in the same reconciler pass (ids in order): once it has failed,
    # that pass has seen the live run too.
    control = claimed_elsewhere(repository, "host-b:2:dead", max_attempts=1)
    died(cluster, control)
    start_skewed_worker(cluster, +TEN_MINUTES_S)

    def owned_by_live() -> tuple[RunStatus, int, str | None]:
        after = repository.get_run(live.id)
        return after.status, after.attempt, after.lease_owner

    deadline = time.monotonic() + 90
    while repository.get_run(control.id).status is RunStatus.RUNNING:
        assert owned_by_live() == (RunStatus.RUNNING, 1, "host-a:1:live")
        assert time.monotonic() < deadline, "the worker's reconciler never judged the leases"
        time.sleep(0.2)
    assert owned_by_live() == (RunStatus.RUNNING, 1, "host-a:1:live")


def test_a_worker_ten_minutes_behind_still_moves_a_dead_run_on(cluster: Cluster) -> None:
    repository = cluster.repository()
    dead = claimed_elsewhere(repository, "host-b:2:dead", max_attempts=1)
    died(cluster, dead)
    start_skewed_worker(cluster, -TEN_MINUTES_S)
    failed = wait_until_failed(repository, dead.id)
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None and "worker lost 1 times" in failed.error
