"""Start-up benchmark (not a test): whole `trainq` processes, as a person waits for them.

    python -m bench.startup_bench [--repeats 15] [--runs 50] [--train-repeats 0] [--json]

Each figure is the median wall (and CPU) time of fresh processes, run one after another, with the
load average read before and after (the machine may be shared):

1. ``trainq runs list`` on an embedded home holding ``--runs`` finished runs (written straight
   through the repository, so no training is needed);
2. ``trainq --help``;
3. ``python -c pass`` in the same interpreter: the floor no command can go under;
4. with ``--train-repeats N``: ``trainq train`` with its defaults (the seed's job, 10,000 steps,
   embedded, each in a new home) beside the seed notebook's loop as a whole process (import
   TensorFlow, load the data, ``bench.training_bench.seed_loop`` for 10,000 steps), and their
   ratio. Slow: the seed's loop is eager.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from storage import Database, Repository, Settings
from tests.cli.conftest import embedded_env
from tests.cli.seeding import succeeded_run


def seeded_home(home: Path, runs: int) -> None:
    """Write ``runs`` SUCCEEDED runs into the SQLite database of ``home``."""
    database = Database(Settings.from_env(embedded_env(home)).database_url)
    database.ensure_schema(auto_upgrade=True)
    repository = Repository(database)
    for _ in range(runs):
        succeeded_run(repository, steps=1000)
    database.dispose()


def process_seconds(
    argv: list[str], env: dict[str, str], repeats: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each of ``repeats`` fresh processes running
    ``argv`` (which must exit 0). CPU time is the steadier figure on a shared machine."""
    wall, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def figure(seconds: tuple[list[float], list[float]]) -> dict[str, float]:
    wall, cpu = seconds
    return {
        "median_s": round(statistics.median(wall), 3),
        "min_s": round(min(wall), 3),
        "max_s": round(max(wall), 3),
        "median_cpu_s": round(statistics.median(cpu), 3),
    }


#: The seed notebook's job as one process: reuses ``bench.training_bench.seed_loop``.
SEED_PROCESS = (
    "from bench.training_bench import seed_loop\n"
    "from worker.data import load_fashion_mnist\n"
    "seed_loop(load_fashion_mnist(), 10_000)\n"
)


def measure_training(repeats: int) -> dict[str, Any]:
    """``trainq train`` (defaults) and the seed's loop, each as ``repeats`` fresh processes."""
    trainq_wall, trainq_cpu = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="trainq-train-") as directory:
            argv = [sys.executable, "-m", "api_cli", "train"]
            wall, cpu = process_seconds(argv, embedded_env(Path(directory)), 1)
            trainq_wall += wall
            trainq_cpu += cpu
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    seed = figure(process_seconds([sys.executable, "-c", SEED_PROCESS], env, repeats))
    trainq = figure((trainq_wall, trainq_cpu))
    return {
        "trainq_train": trainq,
        "seed_loop_process": seed,
        "seed_over_trainq_wall": round(seed["median_s"] / trainq["median_s"], 2),
    }


def measure(repeats: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="trainq-startup-") as directory:
        home = Path(directory)
        seeded_home(home, runs)
        env = embedded_env(home)
        trainq = [sys.executable, "-m", "api_cli"]
        load_before = os.getloadavg()
        results = {
            "runs_list": figure(process_seconds([*trainq, "runs", "list"], env, repeats)),
            "help": figure(process_seconds([*trainq, "--help"], env, repeats)),
            "python_floor": figure(process_seconds([sys.executable, "-c", "pass"], env, repeats)),
        }
        load_after = os.getloadavg()
    return {
        "repeats": repeats,
        "stored_runs": runs,
        **results,
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--train-repeats", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.repeats, args.runs)
    if args.train_repeats:
        load_before = os.getloadavg()[0]
        result["training"] = measure_training(args.train_repeats)
        result["training"]["load_average_1min"] = [load_before, os.getloadavg()[0]]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name in ("runs_list", "help", "python_floor"):
        shown = result[name]
        print(
            f"{name:13} median {shown['median_s']:.3f} s "
            f"(min {shown['min_s']:.3f}, max {shown['max_s']:.3f}), "
            f"CPU median {shown['median_cpu_s']:.3f} s"
        )
    load = result["load_average_1min"]
    print(f"load average (1 min): {load['before']:.2f} before, {load['after']:.2f} after")
    if "training" in result:
        training = result["training"]
        for name in ("trainq_train", "seed_loop_process"):
            shown = training[name]
            print(
                f"{name:17} median {shown['median_s']:.2f} s, CPU median "
                f"{shown['median_cpu_s']:.2f} s"
            )
        print(
            f"seed loop / trainq train (wall): {training['seed_over_trainq_wall']}x; load "
            f"average {training['load_average_1min']}"
        )


if __name__ == "__main__":
    main()
