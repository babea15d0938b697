"""Sweep benchmark: the issue's 64-trial ASHA sweep, packed and as today, and trained to the end.

In one run: the ASHA sweep as today (``pack: 1``, the file as it is: ``max_concurrent`` 4), the
same ASHA sweep packed (``max_concurrent: 64`` and ``pack: auto``: trials train side by side in
packs, ``worker.pack_plan``) and the full sweep (same seed, same 64 trials, no early stopping,
``pack: 1``) run embedded (in this process, SQLite), and both ASHA sweeps again on a cluster of
2 real `trainq worker` processes (PostgreSQL, Redis database TRAINQ_TEST_REDIS_DB; workers
warmed up by short runs of every chunk shape the sweeps use, timing from submission to the
sweep's end). For each: best validation accuracy, the test accuracy of that trial's final
weights (chosen on validation only), steps trained against the budget, wall time.

``max_concurrent`` is part of what async ASHA sees: with 4 trials at a time a trial meets its
rung when most earlier trials have already recorded theirs; with 64 (all of them, in one pack
embedded or two packs of 32 on 2 workers, ``pack: auto`` being ``ceil(64 / workers)``) the
trials reach each rung together, in seat order. So the two ASHA sweeps may prune different
trials and train different steps; both are reported.

    python -m bench.sweep_bench                       # the issue's sweep (several minutes)
    python -m bench.sweep_bench --quick               # 16 trials of 3,000 steps (about a minute)
    python -m bench.sweep_bench --skip-full           # without the unpruned sweep
    python -m bench.sweep_bench --full-on-cluster     # also the full sweep with 2 workers
    python -m bench.sweep_bench --skip-embedded       # only the ASHA sweeps on 2 workers
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
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


#: The packed sweep's ``max_concurrent``: every trial of the issue's sweep at once.
PACKED_MAX_CONCURRENT = 64


def sweep_data(*, quick: bool, asha: bool, packed: bool = False) -> dict[str, Any]:
    """The issue's sweep (or a small variant), with or without ASHA; today's (``pack: 1``) or
    packed (``max_concurrent: 64``, ``pack: auto``)."""
    data = parse_sweep_text(ISSUE_SWEEP_FILE.read_text())
    if quick:
        data["run_cap"] = 16
        data["parameters"]["steps"] = {"value": 3000}
        data["early_terminate"]["min_steps"] = 500  # rungs 500, 1500 (checkpoints every 500)
    if not asha:
        del data["early_terminate"]
    if packed:
        # Never more than the trials (--quick has 16): ``pack: auto`` does not look at run_cap,
        # and a pack wider than the sweep would train parked columns to the end.
        data["max_concurrent"] = min(PACKED_MAX_CONCURRENT, data["run_cap"])
        data["pack"] = "auto"
    else:
        data["pack"] = 1
    return data


def packed_warm_up(data: dict[str, Any], workers: int) -> list[Any]:
    """Configs whose training compiles every packed width ``data``'s trials train at with
    ``workers`` workers: the width ``pack: auto`` resolves to and each width its packs narrow
    to at ASHA's rungs (``TrainConfig.pack_narrows``), one chunk at each, in one run (a run of
    pack P trains alone in a pack of P, narrowing on the same schedule). None when unpacked."""
    from worker.config import TrainConfig
    from worker.sweep_plan import plan_trials
    from worker.sweeps import parse_spec, with_pack_decided

    trial = plan_trials(with_pack_decided(parse_spec(data), workers))[0][1]
    if trial.pack <= 1:
        return []
    chunk = trial.chunk_steps
    narrows = tuple((chunk * (i + 1), width) for i, (_, width) in enumerate(trial.pack_narrows))
    config = TrainConfig(
        steps=chunk * (len(narrows) + 1),
        chunk_steps=chunk,
        momentum=0.9,
        seed=1,
        pack=trial.pack,
        pack_narrows=narrows,
    )
    return [config]


def pack_schedule(data: dict[str, Any], workers: int) -> str:
    """The packed widths of ``data``'s trials, e.g. ``64, 32 from 1000, 8 from 3000``."""
    configs = packed_warm_up(data, workers)
    if not configs:
        return "1"
    from worker.sweep_plan import plan_trials
    from worker.sweeps import parse_spec, with_pack_decided

    trial = plan_trials(with_pack_decided(parse_spec(data), workers))[0][1]
    return ", ".join([str(trial.pack), *(f"{w} from {s}" for s, w in trial.pack_narrows)])


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
    sweep = repository.get_sweep(sweep_id)
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
        "pack": sweep.spec.get("pack"),
        "max_concurrent": sweep.max_concurrent,
        "start_groups": start_groups(repository, sweep_id),
        "wall_s": wall_s,
    }


def start_groups(repository: Repository, sweep_id: int, gap_s: float = 1.0) -> list[int]:
    """The sweep's trials grouped by when they started training (a new group after ``gap_s``
    without a start): how many trials each pack, or each wave of unpacked trials, started."""
    starts = sorted(
        run.started_at for run in repository.list_runs(sweep_id=sweep_id) if run.started_at
    )
    groups: list[int] = []
    for index, started in enumerate(starts):
        if index == 0 or (started - starts[index - 1]).total_seconds() > gap_s:
            groups.append(0)
        groups[-1] += 1
    return groups


def trial_chunk_steps(data: dict[str, Any]) -> int:
    """The chunk size the sweep's trials train with (what the warm-up must compile)."""
    from worker.sweep_plan import plan_trials
    from worker.sweeps import parse_spec

    return plan_trials(parse_spec(data))[0][1].chunk_steps


def warm_up(chunk_steps: int, packed: Sequence[Any] = ()) -> None:
    """Import TensorFlow and compile the chunk functions once, so no sweep pays for it alone:
    today's two shapes (plain SGD and momentum) and every packed width (``packed_warm_up``)."""
    from worker.config import TrainConfig
    from worker.data import load_fashion_mnist
    from worker.training import train

    for momentum in (0.0, 0.9):
        config = TrainConfig(steps=chunk_steps, chunk_steps=chunk_steps, momentum=momentum, seed=1)
        train(config, load_fashion_mnist())
    for config in packed:
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


def warm_up_workers(
    repository: Repository, dispatcher: Any, chunk_steps: int, packed: list[Any]
) -> None:
    """Short runs, so both workers have TensorFlow loaded and every step shape compiled: four
    of today's (plain SGD and momentum) and two of each ``packed_warm_up`` config. Which worker
    takes which run is the broker's choice, so this makes it likely, not certain, that each
    worker compiled each shape."""
    from storage.records import JobKind
    from tests.integration.harness import wait_for
    from worker.config import TrainConfig

    run_ids = []
    configs = [
        TrainConfig(steps=chunk_steps, chunk_steps=chunk_steps, momentum=momentum, seed=seed)
        for seed, momentum in enumerate((0.0, 0.0, 0.9, 0.9))
    ]
    configs += [config for config in packed for _ in range(2)]
    for config in configs:
        seed = config.seed_value
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


#: Workers of the cluster mode.
CLUSTER_WORKERS = 2


def run_on_cluster(scratch: Path, datas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each sweep through 2 real workers; timed from submission to the sweep's end. ``pack:
    auto`` is resolved for the 2 workers, as the client does from the broker's census."""
    from worker.cluster.publisher import Dispatcher

    results = {}
    scratch.mkdir()
    with cluster_environment(scratch, f"trainq_bench_sweep_{os.getpid()}") as cluster:
        cluster.extra_env["TRAINQ_LEASE_TTL_S"] = "30"  # production-like settings for timings
        cluster.extra_env["TRAINQ_RECONCILE_EVERY_S"] = "30"
        for _ in range(CLUSTER_WORKERS):
            cluster.start_worker(worker_command())
        repository = cluster.repository()
        dispatcher = Dispatcher(cluster.settings())
        packed = _packed_warm_up(datas.values(), CLUSTER_WORKERS)
        warm_up_workers(
            repository, dispatcher, trial_chunk_steps(next(iter(datas.values()))), packed
        )
        for label, data in datas.items():
            load_before, started = _load(), time.perf_counter()
            sweep = submit_sweep(
                repository, data, max_attempts=3, dispatcher=dispatcher, workers=CLUSTER_WORKERS
            )
            while not repository.get_sweep(sweep.id).status.terminal:
                time.sleep(0.05)
            figures = summarize(repository, sweep.id, time.perf_counter() - started)
            results[label] = figures | {"load_1min": [load_before, _load()]}
        dispatcher.close()
    return results


def _packed_warm_up(datas: Any, workers: int) -> list[Any]:
    """``packed_warm_up`` of every sweep in ``datas``."""
    return [config for data in datas for config in packed_warm_up(data, workers)]


def main() -> None:
    """Run the sweeps and print the comparison."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="16 trials of 3,000 steps")
    parser.add_argument("--full-on-cluster", action="store_true")
    parser.add_argument("--skip-full", action="store_true", help="no unpruned sweep")
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument(
        "--skip-embedded", action="store_true", help="only the 2-worker sweeps (no ratios)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sweeps = {
        "asha": sweep_data(quick=args.quick, asha=True),
        "asha_packed": sweep_data(quick=args.quick, asha=True, packed=True),
    }
    full = {} if args.skip_full else {"full": sweep_data(quick=args.quick, asha=False)}
    results: dict[str, Any] = {}
    if not args.skip_embedded:
        embedded = sweeps | full
        warm_up(trial_chunk_steps(sweeps["asha"]), _packed_warm_up(embedded.values(), 1))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        if not args.skip_embedded:
            for label, data in embedded.items():
                (root / label).mkdir()
                figures = _with_load(run_embedded, root / label, data)
                results[f"embedded_{label}"] = figures | {"widths": pack_schedule(data, 1)}
        if not args.skip_cluster:
            datas = sweeps | (full if args.full_on_cluster else {})
            for label, figures in run_on_cluster(root / "cluster", datas).items():
                widths = pack_schedule(datas[label], CLUSTER_WORKERS)
                results[f"2_workers_{label}"] = figures | {"widths": widths}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print_table(results)


def _load() -> float:
    return os.getloadavg()[0]


def _with_load(work: Any, *args: Any) -> dict[str, Any]:
    """``work(*args)``'s figures with the 1-minute load average before and after."""
    before = _load()
    figures: dict[str, Any] = work(*args)
    return figures | {"load_1min": [before, _load()]}


def print_table(results: dict[str, Any]) -> None:
    """One line per sweep, then the ratios the issue sets goals for."""
    print(
        f"{'sweep':<22} {'pack':>4} {'conc':>4} {'best val':>9} {'its test':>9} {'steps':>10} "
        f"{'pruned':>7} {'wall s':>8}  load"
    )
    for label, r in results.items():
        print(
            f"{label:<22} {r['pack']:>4} {r['max_concurrent']:>4} {r['best_val_accuracy']:>9.4f} "
            f"{r['best_test_accuracy']:>9.4f} {r['steps_trained']:>10,} {r['pruned']:>7} "
            f"{r['wall_s']:>8.1f}  {r['load_1min'][0]:.1f}->{r['load_1min'][1]:.1f}"
        )
        print(
            f"{'':<22} widths {r.get('widths', '?')}; "
            f"trials started in groups of {r['start_groups']}"
        )
    for where in ("embedded", "2_workers"):
        today, packed = results.get(f"{where}_asha"), results.get(f"{where}_asha_packed")
        if today and packed:
            print(
                f"{where}: packed ASHA is {today['wall_s'] / packed['wall_s']:.1f}x faster than "
                f"today's ({packed['wall_s']:.1f} s against {today['wall_s']:.1f} s; goal 5x"
                + (", and at most 15 s" if where == "2_workers" else "")
                + f"); its best trial's test accuracy {packed['best_test_accuracy']:.2%} "
                "(goal at least 84.4 %)"
            )
    if "embedded_asha" not in results or "embedded_full" not in results:
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
