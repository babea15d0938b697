"""Chaos benchmark (not a test): runs per minute through 2 workers with and without faults.

    python -m bench.chaos_bench [--runs 12] [--faults 10] [--seed 8] [--kinds K,…]
                                [--lease-ttl-s 4] [--reconcile-every-s 1] [--json]

Needs the local Redis (127.0.0.1:6379, database TRAINQ_TEST_REDIS_DB, default 11) and PostgreSQL
(127.0.0.1:5432). Starts real `trainq worker` processes from the compose file's command against
a throwaway database, runs the same batch of runs twice (no faults, then about ten seeded faults:
SIGKILL of a job process or a whole worker, a stop by SIGTERM or Ctrl-C; stopped workers are
restarted) and reports runs per minute for each and the loss the faults cost. Correctness under
the same chaos is asserted by tests/integration/test_chaos.py.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from storage.records import RunStatus
from tests.integration.chaos import FAULT_KINDS, ChaosPlan, ChaosReport, run_chaos
from tests.integration.chaos_costs import FaultCost, fault_costs
from tests.integration.harness import cluster_environment


def measure(plan: ChaosPlan, *, inject: bool, settings: dict[str, str]) -> ChaosReport:
    """One chaos run (with or without faults) in a fresh database and Redis database."""
    with tempfile.TemporaryDirectory() as directory:
        name = f"trainq_chaos_bench_{os.getpid()}_{int(inject)}"
        with cluster_environment(Path(directory), name) as cluster:
            cluster.extra_env.update(settings)
            report = run_chaos(cluster, plan, inject=inject)
            repository = cluster.repository()
            statuses = [repository.get_run(run_id).status for run_id in report.run_ids]
            assert statuses == [RunStatus.SUCCEEDED] * plan.runs, statuses
            report.costs = fault_costs(report)  # the logs go with the directory
            return report


def summary(report: ChaosReport) -> dict[str, Any]:
    """The figures of one chaos run."""
    return {
        "runs": len(report.run_ids),
        "elapsed_s": round(report.elapsed_s, 1),
        "runs_per_min": round(report.runs_per_min, 1),
        "faults": dict(Counter(fault.kind for fault in report.faults)),
        "fault_costs": [cost.__dict__ for cost in report.costs],
    }


def cost_lines(costs: list[FaultCost]) -> list[str]:
    """One line per fault: how long its worker did not train, and what that time went to."""

    def seconds(value: float | None) -> str:
        return f"{value:5.1f} s" if value is not None else "    -  "

    lines = []
    for cost in costs:
        lines.append(
            f"  {cost.kind:11} training again after {seconds(cost.training_again_s)}: "
            f"claim {seconds(cost.claim_after_s)}, start-up {seconds(cost.start_up_s)} "
            f"(import {seconds(cost.import_s)}, {cost.compilations} compilations), "
            f"warm-up {seconds(cost.warm_up_s)}, {cost.steps_recomputed:,} steps again"
        )
    return lines


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--faults", type=int, default=10)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--kinds",
        default=",".join(FAULT_KINDS),
        help=f"comma-separated fault kinds from {', '.join(FAULT_KINDS)}",
    )
    parser.add_argument(
        "--lease-ttl-s",
        default="4",
        help="TRAINQ_LEASE_TTL_S of the workers (the test harness's 4; trainq's default is 30)",
    )
    parser.add_argument(
        "--reconcile-every-s",
        default="1",
        help="TRAINQ_RECONCILE_EVERY_S of the workers (the harness's 1; trainq's default is 30)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    kinds = tuple(kind.strip() for kind in options.kinds.split(",") if kind.strip())
    if not kinds or set(kinds) - set(FAULT_KINDS):
        parser.error(f"--kinds {options.kinds!r}: use some of {', '.join(FAULT_KINDS)}")
    plan = ChaosPlan(runs=options.runs, faults=options.faults, seed=options.seed, kinds=kinds)
    settings = {
        "TRAINQ_LEASE_TTL_S": options.lease_ttl_s,
        "TRAINQ_RECONCILE_EVERY_S": options.reconcile_every_s,
    }
    clean = summary(measure(plan, inject=False, settings=settings))
    chaotic = summary(measure(plan, inject=True, settings=settings))
    loss = 1 - chaotic["runs_per_min"] / clean["runs_per_min"]
    figures = {
        "plan": plan.__dict__,
        "settings": settings,
        "clean": clean,
        "faults": chaotic,
        "loss": round(loss, 3),
    }
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"clean:  {clean['runs_per_min']:5.1f} runs/min ({clean['elapsed_s']} s)")
    print(
        f"faults: {chaotic['runs_per_min']:5.1f} runs/min ({chaotic['elapsed_s']} s, "
        f"{chaotic['faults']})"
    )
    print(f"loss:   {loss:.0%}")
    print("\n".join(cost_lines([FaultCost(**cost) for cost in chaotic["fault_costs"]])))


if __name__ == "__main__":
    main()
