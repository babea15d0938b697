"""Leases live on the database server's clock: a worker's wrong clock neither takes a live run
nor keeps a dead one.

The repository here is the one workers build (no clock given). The first tests run on SQLite and
PostgreSQL; the skewed-clock ones run a child process under libfaketime against PostgreSQL.
SQLite has no clock apart from its host's (it is embedded, on local disk only), so a process
whose clock is faked fakes SQLite's too: there is nothing for it to disagree with.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from storage import Database, Repository
from storage.records import AttemptOutcome, RunStatus
from tests.skewed_clock import require_faketime, skewed_environment
from tests.storage.conftest import TABLES
from tests.storage.support import execute_sql, new_run

LEASE_TTL_S = 60.0
TEN_MINUTES_S = 600
#: How SQLAlchemy writes a ``UTCDateTime`` on SQLite; comparisons there compare this text.
SQLITE_STORED_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


@pytest.fixture
def server_clock_repo(db: Database) -> Repository:
    """A repository as a worker builds it: every lease time comes from the database."""
    return Repository(db)


def claim(repo: Repository, run_id: int, owner: str = "host-a:1:job") -> int:
    claimed = repo.claim_run(run_id, owner=owner, worker_host="host-a", lease_ttl_s=LEASE_TTL_S)
    assert claimed is not None
    return claimed.attempt


def test_a_claimed_lease_ends_one_ttl_after_the_claim_by_one_clock(
    server_clock_repo: Repository,
) -> None:
    run_id = new_run(server_clock_repo).id
    claim(server_clock_repo, run_id)
    run = server_clock_repo.get_run(run_id)
    assert run.lease_expires_at is not None and run.started_at is not None
    assert run.lease_expires_at - run.started_at == timedelta(seconds=LEASE_TTL_S)


def test_a_lease_written_by_the_database_is_stored_as_the_column_stores_times(
    db: Database, server_clock_repo: Repository
) -> None:
    run_id = new_run(server_clock_repo).id
    attempt = claim(server_clock_repo, run_id)
    ack = server_clock_repo.renew_lease(run_id, attempt, LEASE_TTL_S)
    assert server_clock_repo.get_run(run_id).lease_expires_at == ack.lease_expires_at
    if db.dialect_name == "sqlite":  # text, compared as text with times bound from Python
        [(stored,)] = execute_sql(db, "SELECT lease_expires_at FROM runs WHERE id = ?", (run_id,))
        assert SQLITE_STORED_TIME.match(stored), stored


def test_a_fresh_lease_is_neither_claimed_nor_requeued(server_clock_repo: Repository) -> None:
    run_id = new_run(server_clock_repo).id
    attempt = claim(server_clock_repo, run_id)
    taken = server_clock_repo.claim_run(
        run_id, owner="host-b:2:job", worker_host="host-b", lease_ttl_s=LEASE_TTL_S
    )
    assert taken is None
    assert server_clock_repo.runs_to_redispatch(redispatch_after_s=3600.0) == []
    kept = server_clock_repo.requeue_expired(run_id)
    assert (kept.status, kept.attempt, kept.lease_owner) == (
        RunStatus.RUNNING,
        attempt,
        "host-a:1:job",
    )


def test_a_lease_ended_by_the_database_is_requeued_as_lost(server_clock_repo: Repository) -> None:
    run_id = new_run(server_clock_repo).id
    attempt = claim(server_clock_repo, run_id)
    assert server_clock_repo.expire_lease(run_id, attempt)
    assert [job.id for job in server_clock_repo.runs_to_redispatch(redispatch_after_s=3600.0)] == [
        run_id
    ]
    assert server_clock_repo.requeue_expired(run_id).status is RunStatus.QUEUED
    [lost] = server_clock_repo.list_attempts(run_id)
    assert lost.outcome is AttemptOutcome.LOST


def run_skewed(db: Database, offset_s: int, operation: str, run_id: int) -> dict[str, object]:
    """Run ``operation`` (``tests.storage.skewed_storage``) in a child ``offset_s`` off."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.storage.skewed_storage", db.url, operation, str(run_id)],
        env=skewed_environment(offset_s),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    result: dict[str, object] = json.loads(child.stdout)
    child_now = datetime.fromisoformat(str(result["child_now"]))
    # The child's clock really is off (by at least nine of its ten minutes).
    assert abs(child_now - datetime.now(UTC) - timedelta(seconds=offset_s)) < timedelta(minutes=1)
    return result


@pytest.fixture
def pg(postgres_database: Database) -> Database:
    """The storage tests' PostgreSQL database, emptied (SQLite: see the module's docstring)."""
    require_faketime()
    execute_sql(postgres_database, f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    return postgres_database


@pytest.fixture
def postgres_repo(pg: Database) -> Repository:
    """A server-clock repository on PostgreSQL."""
    return Repository(pg)


@pytest.mark.postgres
def test_a_worker_ten_minutes_ahead_neither_claims_nor_requeues_a_live_run(
    pg: Database, postgres_repo: Repository
) -> None:
    run_id = new_run(postgres_repo).id
    attempt = claim(postgres_repo, run_id)  # a live worker, its lease fresh for a minute
    assert run_skewed(pg, +TEN_MINUTES_S, "claim", run_id)["attempt"] is None
    assert run_skewed(pg, +TEN_MINUTES_S, "reconcile", run_id)["requeued"] == []
    run = postgres_repo.get_run(run_id)
    assert (run.status, run.attempt, run.lease_owner) == (
        RunStatus.RUNNING,
        attempt,
        "host-a:1:job",
    )


@pytest.mark.postgres
def test_a_worker_ten_minutes_behind_still_requeues_a_dead_run(
    pg: Database, postgres_repo: Repository
) -> None:
    run_id = new_run(postgres_repo).id
    claim(postgres_repo, run_id)
    # Its worker died: the lease ran out a second ago by the database's clock.
    execute_sql(pg, "UPDATE runs SET lease_expires_at = now() - interval '1 second'")
    assert run_skewed(pg, -TEN_MINUTES_S, "reconcile", run_id)["requeued"] == [run_id]
    assert postgres_repo.get_run(run_id).status is RunStatus.QUEUED


@pytest.mark.postgres
def test_a_worker_ten_minutes_behind_holds_its_own_lease_for_the_whole_ttl(
    pg: Database, postgres_repo: Repository
) -> None:
    run_id = new_run(postgres_repo).id
    result = run_skewed(pg, -TEN_MINUTES_S, "claim_and_renew", run_id)
    assert result["attempt"] == 1
    [(left_s,)] = execute_sql(
        pg, "SELECT EXTRACT(EPOCH FROM lease_expires_at - now()) FROM runs WHERE id = ?", (run_id,)
    )
    assert float(left_s) > LEASE_TTL_S / 2  # not nine minutes in the past
    taken = postgres_repo.claim_run(
        run_id, owner="host-b:2:job", worker_host="host-b", lease_ttl_s=LEASE_TTL_S
    )
    assert taken is None
