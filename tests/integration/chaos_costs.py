"""Where a chaos run's faults cost time, read from the workers' logs (``bench.chaos_bench``).

For each fault: the worker whose capacity it took (the one hit by a job kill; for a stopped or
killed worker, the worker started in its place), how long until that worker trained again (its
next job's first chunk done), how much of that was the job's own start-up (TensorFlow import,
checkpoint and data, compilations: ``worker.start_up``'s line) and the replacement job process's
warm-up (``worker.cluster.warm_up``'s line), and how many steps the runs it held had to train again
(their steps when it struck minus the checkpoint they resumed from).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.integration.chaos import _LINE, ChaosReport, Fault, _epoch
from tests.integration.harness import WorkerProcess

_FIRST_CHUNK = re.compile(
    r"run \d+: first chunk done at step \d+, ([\d.]+) s after the claim \(TensorFlow import "
    r"([\d.]+) s, checkpoint and data ([\d.]+) s, (\d+) new compilations?\)"
)
_WARM = re.compile(r"job process \d+ warm in ([\d.]+) s")
_CLAIM = re.compile(r"run \d+: claimed as attempt")


@dataclass(frozen=True)
class FaultCost:
    """What one fault cost."""

    kind: str
    training_again_s: float | None  # fault -> the affected worker's next first chunk done
    claim_after_s: float | None  # fault -> that worker's next claim
    start_up_s: float | None  # claim -> first chunk done (the job's own set-up)
    import_s: float | None  # of which importing TensorFlow
    compilations: int | None  # chunk traces the job caused (0: its process was warm)
    warm_up_s: float | None  # the warm-up of the job process that took over, if it logged one
    steps_recomputed: int  # steps the held runs trained again


def fault_costs(report: ChaosReport) -> list[FaultCost]:
    """One :class:`FaultCost` per fault of ``report``, in order."""
    lines = {worker.name: _lines(worker) for worker in report.workers}
    resumes = sorted(
        (at, int(match.group(1)), int(match.group(2)))
        for worker_lines in lines.values()
        for at, text in worker_lines
        if (match := re.search(r"run (\d+): resuming from checkpoint at step (\d+)", text))
    )
    return [_cost(fault, lines[_affected(report, fault)], resumes) for fault in report.faults]


def _lines(worker: WorkerProcess) -> list[tuple[float, str]]:
    return [(_epoch(stamp), message) for stamp, message in _LINE.findall(worker.log())]


def _affected(report: ChaosReport, fault: Fault) -> str:
    """The worker that lost capacity: the one hit, or the one started in its place."""
    if fault.kind == "kill-job":
        return fault.worker
    names = [worker.name for worker in report.workers]
    index = report.faults.index(fault)
    # Workers are started in order: the initial ones, then one replacement per worker fault.
    replacements = names[report.plan.workers :]
    worker_faults = [f for f in report.faults[: index + 1] if f.kind != "kill-job"]
    return replacements[len(worker_faults) - 1]


def _cost(
    fault: Fault, lines: list[tuple[float, str]], resumes: list[tuple[float, int, int]]
) -> FaultCost:
    after = [(at, text) for at, text in lines if at >= fault.at]
    claim = next((at for at, text in after if _CLAIM.search(text)), None)
    first = next(((at, m) for at, text in after if (m := _FIRST_CHUNK.search(text))), None)
    warm = next((float(m.group(1)) for _, text in after if (m := _WARM.search(text))), None)
    recomputed = 0
    for run_id, steps in zip(fault.runs, fault.steps_done, strict=True):
        resumed = next((step for at, rid, step in resumes if at >= fault.at and rid == run_id), 0)
        recomputed += max(0, steps - resumed)
    return FaultCost(
        kind=fault.kind,
        training_again_s=first[0] - fault.at if first else None,
        claim_after_s=claim - fault.at if claim is not None else None,
        start_up_s=float(first[1].group(1)) if first else None,
        import_s=float(first[1].group(2)) if first else None,
        compilations=int(first[1].group(4)) if first else None,
        warm_up_s=warm,
        steps_recomputed=recomputed,
    )
