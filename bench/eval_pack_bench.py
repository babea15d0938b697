"""Evaluating 100 checkpoints on the test split: packed against one by one, side by side.

One real run on the real Fashion-MNIST (``--checkpoints`` checkpoints, one every 10 steps) is
trained into a temporary SQLite store through the job code. Then, in one warm process, rounds
alternate the two ways of evaluating every checkpoint on the 10,000 test images:

1. **Compute**: ``worker.evaluation.evaluate`` once per checkpoint (today's one-set pass) against
   ``worker.packed_evaluation.evaluate_many`` of all of them (one pass, one product per slice).
2. **Jobs**: one evaluation job per checkpoint, as ``trainq eval RUN --checkpoint all`` queues
   them, executed by ``execute_evaluation_job`` one by one (each job alone: claim, read its
   checkpoint, evaluate, store its row, finish) against the first job taking the others along
   (``mates``: what the embedded mode passes; a worker reads them from the database).

Each figure is the median over ``--rounds``; the ratio is one by one over packed. The packed
results are checked against the one-by-one ones (largest relative loss difference, confusion
cells that differ).

Run::

    python -m bench.eval_pack_bench [--checkpoints 100] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from storage import Database, JobKind, Repository, RunStatus, Settings
from worker.config import TrainConfig
from worker.data import load_fashion_mnist
from worker.evaluation import EvaluationResult, evaluate
from worker.evaluation_job import execute_evaluation_job
from worker.jobs import JobContext, execute_job
from worker.packed_evaluation import evaluate_many, pack_plan
from worker.training.state import FASHION_MNIST_DIMS

EVERY = 10


def _store(root: Path) -> tuple[Repository, Settings]:
    database = Database(f"sqlite:///{root / 'trainq.db'}")
    database.upgrade()
    settings = Settings.from_env(
        {"TRAINQ_HOME": str(root), "TRAINQ_DATABASE_URL": f"sqlite:///{root / 'trainq.db'}"}
    )
    return Repository(database), settings


def _train(repository: Repository, settings: Settings, checkpoints: int) -> int:
    config = TrainConfig(
        steps=checkpoints * EVERY,
        chunk_steps=EVERY,
        checkpoint_every_steps=EVERY,
        learning_rate=0.05,
        seed=1,
        xla=False,
    )
    run = repository.create_run(
        kind=JobKind.TRAIN,
        config=config.model_dump(mode="json"),
        seed=1,
        queue="train",
        max_attempts=1,
    )
    finished = execute_job(JobContext.for_this_process(repository, settings, "bench"), run.id)
    assert finished is not None and finished.status is RunStatus.SUCCEEDED, finished
    return run.id


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    outcome = work()
    return time.perf_counter() - started, outcome


def _agreement(packed: list[Any], alone: list[Any]) -> dict[str, float]:
    """Largest relative loss difference and differing confusion cells, packed against alone."""
    pairs = list(zip(packed, alone, strict=True))
    return {
        "max_relative_loss_difference": max(abs(p.loss - a.loss) / abs(a.loss) for p, a in pairs),
        "confusion_cells_differing": sum(
            int(np.count_nonzero(np.asarray(p.confusion) != np.asarray(a.confusion)))
            for p, a in pairs
        ),
        "max_accuracy_difference": max(abs(p.accuracy - a.accuracy) for p, a in pairs),
    }


def _jobs(repository: Repository, run_id: int, steps: list[int]) -> list[int]:
    return [
        repository.create_evaluation_job(
            run_id=run_id, checkpoint_step=step, split="test", queue="eval", max_attempts=1
        ).id
        for step in steps
    ]


def measure(checkpoints: int, rounds: int) -> dict[str, Any]:
    """Both comparisons, ``rounds`` times each, alternating which goes first."""
    data = load_fashion_mnist(download=False)
    images, labels = data.test_images, data.test_labels
    with tempfile.TemporaryDirectory(prefix="trainq-evalpack-") as root:
        repository, settings = _store(Path(root))
        run_id = _train(repository, settings, checkpoints)
        steps = [info.step for info in repository.list_checkpoints(run_id)]
        weights = [repository.get_checkpoint(run_id, step).arrays for step in steps]
        context = JobContext.for_this_process(repository, settings, "bench")
        evaluate(weights[0], images, labels)  # trace both passes before timing
        evaluate_many(weights[:2], images, labels)
        compute: dict[str, list[float]] = {"one_by_one_s": [], "packed_s": []}
        jobs: dict[str, list[float]] = {"one_by_one_s": [], "packed_s": []}
        alone: list[EvaluationResult] = []
        packed: list[Any] = []
        for round_index in range(rounds):
            order = ("one", "packed") if round_index % 2 == 0 else ("packed", "one")
            for way in order:
                if way == "one":
                    took, alone = _timed(lambda: [evaluate(w, images, labels) for w in weights])
                    compute["one_by_one_s"].append(took)
                    ids = _jobs(repository, run_id, steps)
                    took, _ = _timed(
                        lambda ids=ids: [execute_evaluation_job(context, i, mates=[]) for i in ids]
                    )
                    jobs["one_by_one_s"].append(took)
                else:
                    took, packed = _timed(lambda: evaluate_many(weights, images, labels))
                    compute["packed_s"].append(took)
                    ids = _jobs(repository, run_id, steps)
                    took, _ = _timed(
                        lambda ids=ids: execute_evaluation_job(context, ids[0], mates=ids)
                    )
                    jobs["packed_s"].append(took)
                stored = [repository.get_evaluation_job(i).status for i in ids]
                assert all(status is RunStatus.SUCCEEDED for status in stored), stored
    plan = pack_plan(FASHION_MNIST_DIMS, checkpoints)
    return {
        "checkpoints": checkpoints,
        "test_images": len(labels),
        "rounds": rounds,
        "compute": _summary(compute, checkpoints),
        "jobs": _summary(jobs, checkpoints),
        "agreement": _agreement(packed, alone),
        "plan": {
            "sets_per_pack": plan.sets_per_pack,
            "rows_per_slice": plan.rows_per_slice,
            "peak_mib": plan.peak_bytes(FASHION_MNIST_DIMS) / 1024**2,
        },
    }


def _summary(times: dict[str, list[float]], checkpoints: int) -> dict[str, float]:
    one, packed = statistics.median(times["one_by_one_s"]), statistics.median(times["packed_s"])
    return {
        "one_by_one_s": one,
        "packed_s": packed,
        "one_by_one_checkpoints_per_s": checkpoints / one,
        "packed_checkpoints_per_s": checkpoints / packed,
        "packed_is_x_faster": one / packed,
    }


def main() -> None:
    """Parse the options, measure, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--checkpoints", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    figures = measure(options.checkpoints, options.rounds)
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{figures['checkpoints']} checkpoints x {figures['test_images']:,} test images, "
        f"median of {figures['rounds']} rounds"
    )
    for name in ("compute", "jobs"):
        row = figures[name]
        print(
            f"{name:8} one by one {row['one_by_one_s']:7.3f} s  packed {row['packed_s']:7.3f} s  "
            f"packed is {row['packed_is_x_faster']:.1f}x faster"
        )
    print("agreement", figures["agreement"])
    print("plan", figures["plan"])


if __name__ == "__main__":
    main()
