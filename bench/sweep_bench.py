"""Sweep benchmark: the issue's 64-trial sweep with ASHA against the same trials trained to the end.

In one run: the ASHA sweep and the full sweep (same seed, same 64 trials, no early stopping) run
embedded (in this process, SQLite), and the ASHA sweep again on a cluster of 2 real `trainq worker`
processes (PostgreSQL, Redis database TRAINQ_TEST_REDIS_DB; workers warmed up by four short
runs, timing from submission to the sweep's end). For each: best validation accuracy,
the test accuracy of that trial's final weights (chosen on validation only), steps trained against
the budget, wall time.

    python -m bench.sweep_bench                       # the issue's sweep (several minutes)
    python -m bench.sweep_bench --quick               # 16 trials of 3,000 steps (about a minute)
    python -m bench.sweep_bench --full-on-cluster     # also the full sweep with 2 workers
    python -m bench.sweep_bench --skip-embedded       # only the ASHA sweep on 2 workers
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from storage import Database, Repository, Settings
from tests.cluster.compose import worker_command
from tests.integration.harness import cluster_environment
from worker.jobs import JobContext
from worker.sweep_file import parse_sweep_text
from worker.sweep_report import sweep_report
from worker.sweep_runner import run_sweep_here
from worker.sweeps import submit_sweep

#: The issue's 64-trial sweep, kept once for this bench and the tests.
ISSUE_SWEEP_FILE = Path(__file__).parent / "sweeps" / "issue10.yaml"


def sweep_data(*, quick: bool, asha: bool) -> dict[str, Any]:
    """The issue's sweep (or a small variant), with or without ASHA."""
    data = parse_sweep_text(ISSUE_SWEEP_FILE.read_text())
    if quick:
        data["run_cap"] = 16
        data["parameters"]["steps"] = {"value": 3000}
        data["early_terminate"]["min_steps"] = 500  # rungs 500, 1500 (checkpoints every 500)
    if not asha:
        del data["early_terminate"]
    return data


def test_accuracy(repository: Repository, run_id: int | None) -> float:
    """Accuracy of the run's final weights over the whole test split (NumPy)."""
    from worker.data import load_fashion_mnist

    if run_id is None:
        return float("nan")
    checkpoint = repository.latest_checkpoint(run_id)
    assert checkpoint is not None
    data = load_fashion_mnist()
    logits = (data.test_images.astype(np.float32) / 255) @ checkpoint.arrays["W"]
    predictions = (logits + checkpoint.arrays["b"]).argmax(axis=1)
    return float(np.mean(predictions == data.test_labels))


def summarize(repository: Repository, sweep_id: int, wall_s: float) -> dict[str, Any]:
    """The figures of one finished sweep."""
    report = sweep_report(repository, sweep_id)
    best = report.best
    return {
        "trials": len(report.trials),
        "pruned": sum(t.pruned for t in report.trials),
        "best_run_id": best.run_id if best else None,
        "best_params": best.params if best else None,
        "best_val_accuracy": best.objective if best else None,
        "best_test_accuracy": test_accuracy(repository, best.run_id if best else None),
        "steps_trained": report.steps_trained,
        "steps_budget": report.steps_budget,
        "wall_s": wall_s,
    }


def trial_chunk_steps(data: dict[str, Any]) -> int:
    """The chunk size the sweep's trials train with (what the warm-up must compile)."""
    from worker.sweep_plan import plan_trials
    from worker.sweeps import parse_spec

    return plan_trials(parse_spec(data))[0][1].chunk_steps


def warm_up(chunk_steps: int) -> None:
    """Import TensorFlow and compile the chunk functions once, so no sweep pays for it alone."""
    from worker.config import TrainConfig
    from worker.data import load_fashion_mnist
    from worker.training import train

    for momentum in (0.0, 0.9):
        config = TrainConfig(steps=chunk_steps, chunk_steps=chunk_steps, momentum=momentum, seed=1)
        train(config, load_fashion_mnist())


def run_embedded(home: Path, data: dict[str, Any]) -> dict[str, Any]:
    """One sweep in this process, exactly as `trainq sweep start` runs it without a broker."""
    database = Database(f"sqlite:///{home / 'trainq.db'}")
    database.ensure_schema(auto_upgrade=True)
    repository = Repository(database)
    settings = Settings.from_env({"TRAINQ_HOME": str(home)})
    started = time.perf_counter()
    sweep = submit_sweep(repository, data, max_attempts=3)
    run_sweep_here(JobContext.for_this_process(repository, settings, "bench"), sweep.id)
    return summarize(repository, sweep.id, time.perf_counter() - started)


def warm_up_workers(repository: Repository, dispatcher: Any, chunk_steps: int) -> None:
    """Four short runs, so both workers have TensorFlow loaded and both step shapes compiled."""
    from storage.records import JobKind
    from tests.integration.harness import wait_for
    from worker.config import TrainConfig

    run_ids = []
    for seed, momentum in enumerate((0.0, 0.0, 0.9, 0.9)):
        config = TrainConfig(
            steps=chunk_steps, chunk_steps=chunk_steps, momentum=momentum, seed=seed
        )
        run = repository.create_run(
            kind=JobKind.TRAIN,
            config=config.model_dump(mode="json"),
            seed=seed,
            queue="train",
            max_attempts=3,
        )
        dispatcher.publish(repository, run)
        run_ids.append(run.id)
    for run_id in run_ids:
        wait_for(run_id, repository, timeout_s=300)


def run_on_cluster(scratch: Path, datas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each sweep through 2 real workers; timed from submission to the sweep's end."""
    from worker.cluster.publisher import Dispatcher

    results = {}
    scratch.mkdir()
    with cluster_environment(scratch, f"trainq_bench_sweep_{os.getpid()}") as cluster:
        cluster.extra_env["TRAINQ_LEASE_TTL_S"] = "30"  # production-like settings for timings
        cluster.extra_env["TRAINQ_RECONCILE_EVERY_S"] = "30"
        cluster.start_worker(worker_command())
        cluster.start_worker(worker_command())
        repository = cluster.repository()
        dispatcher = Dispatcher(cluster.settings())
        warm_up_workers(repository, dispatcher, trial_chunk_steps(next(iter(datas.values()))))
        for label, data in datas.items():
            started = time.perf_counter()
            sweep = submit_sweep(repository, data, max_attempts=3, dispatcher=dispatcher)
            while not repository.get_sweep(sweep.id).status.terminal:
                time.sleep(0.05)
            results[label] = summarize(repository, sweep.id, time.perf_counter() - started)
        dispatcher.close()
    return results


def main() -> None:
    """Run the sweeps and print the comparison."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="16 trials of 3,000 steps")
    parser.add_argument("--full-on-cluster", action="store_true")
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument(
        "--skip-embedded", action="store_true", help="only the 2-worker sweep (no ratios)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    asha, full = sweep_data(quick=args.quick, asha=True), sweep_data(quick=args.quick, asha=False)
    results: dict[str, Any] = {}
    if not args.skip_embedded:
        warm_up(trial_chunk_steps(asha))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for label, data in (("asha", asha), ("full", full)):
            if not args.skip_embedded:
                (root / label).mkdir()
                results[f"embedded_{label}"] = run_embedded(root / label, data)
        if not args.skip_cluster:
            datas = {"asha": asha} | ({"full": full} if args.full_on_cluster else {})
            for label, figures in run_on_cluster(root / "cluster", datas).items():
                results[f"2_workers_{label}"] = figures
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    """One line per sweep, then the ratios the issue sets goals for."""
    print(
        f"{'sweep':<18} {'best val':>9} {'its test':>9} {'steps':>10} {'pruned':>7} {'wall s':>8}"
    )
    for label, r in results.items():
        print(
            f"{label:<18} {r['best_val_accuracy']:>9.4f} {r['best_test_accuracy']:>9.4f} "
            f"{r['steps_trained']:>10,} {r['pruned']:>7} {r['wall_s']:>8.1f}"
        )
    if "embedded_asha" not in results:
        return
    asha, full = results["embedded_asha"], results["embedded_full"]
    gap = asha["best_val_accuracy"] - full["best_val_accuracy"]
    print(
        f"ASHA trained {asha['steps_trained'] / full['steps_trained']:.1%} of the full sweep's "
        f"steps; best validation accuracy {gap:+.4f}; best params ASHA {asha['best_params']} "
        f"/ full {full['best_params']}"
    )


if __name__ == "__main__":
    main()
