"""Chaos as a test: a seeded minute of faults never loses, repeats or doubles a run."""

from __future__ import annotations

from collections import Counter

import pytest

from storage.records import RunStatus
from tests.integration.chaos import ChaosPlan, overlapping_attempts, run_chaos
from tests.integration.harness import Cluster
from tests.integration.test_cluster import assert_steps_exactly

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

#: About ten faults while the batch lasts (30 s on an idle 2-core machine, longer when busy).
PLAN = ChaosPlan(runs=12, workers=2, steps=30_000, faults=10, fault_gap_s=(2.0, 5.0), seed=8)


def test_runs_under_a_minute_of_random_kills_and_stops_each_succeed_exactly_once(
    cluster: Cluster,
) -> None:
    report = run_chaos(cluster, PLAN, inject=True)

    repository = cluster.repository()
    runs = [repository.get_run(run_id) for run_id in report.run_ids]
    kinds = Counter(fault.kind for fault in report.faults)
    print(
        f"\n{len(runs)} runs in {report.elapsed_s:.1f} s ({report.runs_per_min:.1f} runs/min) "
        f"under {len(report.faults)} faults {dict(kinds)}; attempts {[r.attempt for r in runs]}"
    )
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * PLAN.runs, [
        (run.id, run.status, run.error) for run in runs
    ]
    assert len(report.faults) >= PLAN.faults // 2, "the batch ended before half the faults landed"
    for run in runs:
        assert_steps_exactly(cluster, run.id, PLAN.steps)
        final = repository.latest_checkpoint(run.id)
        assert final is not None and final.info.step == PLAN.steps
    assert overlapping_attempts(report) == []
    for worker in report.workers:
        assert "was superseded" not in worker.log(), worker.log()
