"""A bounded, seeded chaos run: a batch of runs through local `trainq worker` processes while
job processes are SIGKILLed, whole workers are SIGKILLed or stopped (SIGTERM, Ctrl-C) and
restarted. Used by ``tests/integration/test_chaos.py`` (correctness) and ``bench.chaos_bench``
(runs per minute with and without faults).

The seed fixes the faults' kinds and the gaps between them; which worker a fault hits depends on
which workers are busy at that moment, so two runs with one seed are alike, not identical.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import re
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from storage.records import JobKind, RunRecord
from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster, WorkerProcess
from worker.cluster.publisher import Dispatcher
from worker.config import TrainConfig
from worker.queues import TRAIN_QUEUE

if TYPE_CHECKING:
    from tests.integration.chaos_costs import FaultCost

#: Fault kinds: SIGKILL of a job process (the worker lives on), SIGKILL of a whole worker, and a
#: graceful stop (SIGTERM or Ctrl-C, by a coin flip); a worker that a fault ended is restarted.
FAULT_KINDS = ("kill-job", "kill-worker", "stop")


@dataclass(frozen=True)
class ChaosPlan:
    """What to run and how hard to shake it."""

    runs: int = 12
    workers: int = 2
    steps: int = 30_000
    chunk_steps: int = 500
    checkpoint_every_steps: int = 5_000
    faults: int = 10
    kinds: tuple[str, ...] = FAULT_KINDS  # drawn uniformly
    fault_gap_s: tuple[float, float] = (3.0, 8.0)  # uniform gap between two faults
    seed: int = 0
    timeout_s: float = 420.0


@dataclass(frozen=True)
class Fault:
    """One injected fault: when (epoch s), what, and the processes it hit."""

    at: float
    kind: str
    worker: str
    pids: tuple[int, ...]
    runs: tuple[int, ...] = ()  # the runs its job process held (a kill's victims)
    steps_done: tuple[int, ...] = ()  # those runs' recorded steps when the fault struck


@dataclass
class ChaosReport:
    """What a chaos run did and how long it took."""

    plan: ChaosPlan
    run_ids: list[int]
    elapsed_s: float
    faults: list[Fault] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    costs: list[FaultCost] = field(default_factory=list)  # filled by bench.chaos_bench

    @property
    def runs_per_min(self) -> float:
        """Finished runs per minute, from the first submission to the last terminal run."""
        return len(self.run_ids) * 60.0 / self.elapsed_s


def run_chaos(cluster: Cluster, plan: ChaosPlan, *, inject: bool) -> ChaosReport:
    """Submit ``plan.runs`` runs to ``plan.workers`` workers and wait until all are terminal,
    injecting ``plan.faults`` faults on busy workers when ``inject``; workers that a fault ended
    are restarted at once."""
    rng = random.Random(plan.seed)
    active = [cluster.start_worker(worker_command()) for _ in range(plan.workers)]
    report = ChaosReport(plan, [], 0.0, workers=list(active))
    repository = cluster.repository()
    started = time.monotonic()
    report.run_ids = submit_runs(cluster, plan)
    next_fault = time.monotonic() + rng.uniform(*plan.fault_gap_s)
    while True:
        runs = [repository.get_run(run_id) for run_id in report.run_ids]
        if all(run.status.terminal for run in runs):
            break
        assert time.monotonic() - started < plan.timeout_s, "chaos run did not finish in time"
        if inject and len(report.faults) < plan.faults and time.monotonic() >= next_fault:
            kind = rng.choice(plan.kinds)
            if kind == "stop":
                kind = rng.choice(("sigterm", "ctrl-c"))
            busy = _busy_workers(active, runs)
            if busy:
                target = rng.choice(busy)
                fault = _inject(cluster, active, report, target, kind)
                held = [r for r in runs if _pid_of(r) in fault.pids]
                report.faults.append(
                    dataclasses.replace(
                        fault,
                        runs=tuple(r.id for r in held),
                        steps_done=tuple(r.steps_done for r in held),
                    )
                )
            next_fault = time.monotonic() + rng.uniform(*plan.fault_gap_s)
        time.sleep(0.05)
    report.elapsed_s = time.monotonic() - started
    return report


def submit_runs(cluster: Cluster, plan: ChaosPlan) -> list[int]:
    """Queue the plan's runs the way `trainq train --no-wait` does, in this process: a dozen CLI
    processes would take longer to start than the runs take to train on two busy cores."""
    repository = cluster.repository()
    dispatcher = Dispatcher(cluster.settings())
    run_ids = []
    for seed in range(plan.runs):
        config = TrainConfig(
            steps=plan.steps,
            chunk_steps=plan.chunk_steps,
            checkpoint_every_steps=plan.checkpoint_every_steps,
            seed=seed,
        ).resolved()
        run = repository.create_run(
            kind=JobKind.TRAIN,
            config=config.model_dump(mode="json"),
            seed=config.seed_value,
            queue=TRAIN_QUEUE,
            max_attempts=plan.faults + 2,  # every fault could hit one run; none may run out
        )
        dispatcher.publish(repository, run)
        run_ids.append(run.id)
    dispatcher.close()
    return run_ids


def _busy_workers(active: list[WorkerProcess], runs: list[RunRecord]) -> list[WorkerProcess]:
    """Workers whose job process holds the lease of a running run."""
    owners = {_pid_of(run) for run in runs}
    return [w for w in active if w.alive() and any(pid in owners for pid in w.job_pids())]


def _pid_of(run: RunRecord) -> int | None:
    """The process id in a run's lease owner (``host:pid:task id``), if it is leased."""
    return int(run.lease_owner.split(":")[1]) if run.lease_owner else None


def _inject(
    cluster: Cluster,
    active: list[WorkerProcess],
    report: ChaosReport,
    target: WorkerProcess,
    kind: str,
) -> Fault:
    pids = (target.process.pid, *target.job_pids())
    at = time.time()
    if kind == "kill-job":
        return Fault(at, kind, target.name, (target.kill_job_process(),))
    if kind == "kill-worker":
        target.kill()
    else:
        if kind == "sigterm":
            target.signal_main(signal.SIGTERM)
        else:
            target.press_ctrl_c()
        try:
            target.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            target.kill()
    active.remove(target)
    replacement = cluster.start_worker(worker_command())
    active.append(replacement)
    report.workers.append(replacement)
    return Fault(at, kind, target.name, pids)


_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): [^]]*\] (.*)$", re.MULTILINE)
_CLAIM = re.compile(r"run (\d+): claimed as attempt \d+ by [^:]+:(\d+):(\S+)")
_DONE = re.compile(r"Task trainq\.\w+\[(\S+)\] (?:succeeded|failed|raised)")
_HANDED_BACK = re.compile(r"run (\d+): handed back at step")


def training_intervals(report: ChaosReport) -> dict[int, list[tuple[float, float, str]]]:
    """Per run, every attempt's (start, end, owner) from the workers' logs and the faults: a claim
    starts an attempt; its hand-back, its task's end, or the fault that killed its process ends
    it (a worker runs one job at a time, so the next such line in its log is this attempt's)."""
    killed_at = {pid: fault.at for fault in report.faults for pid in fault.pids}
    intervals: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
    for worker in report.workers:
        lines = [(_epoch(stamp), message) for stamp, message in _LINE.findall(worker.log())]
        for index, (at, message) in enumerate(lines):
            claim = _CLAIM.search(message)
            if claim is None:
                continue
            run_id, pid, task_id = int(claim.group(1)), int(claim.group(2)), claim.group(3)
            end = min(killed_at.get(pid, math.inf), killed_at.get(worker.process.pid, math.inf))
            for later, text in lines[index + 1 :]:
                done = _DONE.search(text)
                handed_back = _HANDED_BACK.search(text)
                if (done and done.group(1) == task_id) or (
                    handed_back and int(handed_back.group(1)) == run_id
                ):
                    end = min(end, later)
                    break
            intervals[run_id].append((at, end, f"{worker.name}:{pid}:{task_id}"))
    # A SIGKILLed process may lose its last log lines (the claim among them): its attempt at
    # least ended at the kill, so no successor may have claimed the run before then.
    for fault in report.faults:
        if fault.kind.startswith("kill"):
            for run_id in fault.runs:
                intervals[run_id].append((fault.at - 1e-3, fault.at, f"{fault.worker} (killed)"))
    return {run_id: sorted(spans) for run_id, spans in intervals.items()}


def overlapping_attempts(report: ChaosReport, slack_s: float = 0.05) -> list[str]:
    """Runs that two job processes trained at the same time (should be none)."""
    problems = []
    for run_id, spans in training_intervals(report).items():
        for (_, end, owner), (start, _, successor) in itertools.pairwise(spans):
            if start < end - slack_s:
                problems.append(f"run {run_id}: {successor} claimed before {owner} ended")
    return problems


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
