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

With ``--baseline-commit REV`` (issue 9's figures were taken on ``155b66a``), 1 and 4's
``trainq train`` are also measured on that commit (and with ``--postgres SERVER_URL``, 1 on a
throwaway PostgreSQL database per tree as well), checked out into a temporary ``git worktree``
(see ``bench.code_trees``), alternating baseline and current process by process so the machine's
load weighs on both alike; the report gives both medians and current / baseline ratios beside the
issue's targets (its filer's figures, as ratios):

    python -m bench.startup_bench --baseline-commit 155b66a --repeats 15 --train-repeats 5 \
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.code_trees import CURRENT_ROOT, CodeTree, baseline_tree
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
    argv: list[str], env: dict[str, str], repeats: int, cwd: Path | None = None
) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each of ``repeats`` fresh processes running
    ``argv`` (which must exit 0). CPU time is the steadier figure on a shared machine."""
    wall, cpu = [], []
    # Progress lines and TensorFlow's log on stderr would bury the report (and cost a terminal).
    stderr = subprocess.DEVNULL if cwd is not None else None
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=stderr)
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


@contextmanager
def postgres_databases(server_url: str, count: int) -> Iterator[list[str]]:
    """``count`` new, empty databases on the PostgreSQL server at ``server_url``, dropped after."""
    import psycopg

    names = [f"trainq_startup_bench_{os.getpid()}_{index}" for index in range(count)]
    libpq_url = server_url.replace("postgresql+psycopg://", "postgresql://").rstrip("/")
    with psycopg.connect(f"{libpq_url}/postgres", autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield [f"{server_url.rstrip('/')}/{name}" for name in names]
        finally:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


#: Issue 9's targets over its filer's figures (taken on 155b66a): ``runs list`` 0.35 s for
#: 0.55 s, ``trainq train`` 3.5 s for 4.4 s. Met when current / baseline is at most this.
TARGET_RATIOS = {"runs_list": 0.35 / 0.55, "trainq_train": 3.5 / 4.4}


def paired_seconds(
    trees: list[CodeTree], repeats: int, command: Any
) -> dict[str, tuple[list[float], list[float]]]:
    """``repeats`` rounds of one process per tree, in turn (baseline, current, baseline, ...),
    so a burst of load on the shared machine falls on both. ``command(tree)`` gives the
    ``(argv, env)`` of one process (a new home each time where it needs one)."""
    seconds: dict[str, tuple[list[float], list[float]]] = {tree.label: ([], []) for tree in trees}
    for _ in range(repeats):
        for tree in trees:
            argv, env = command(tree)
            wall, cpu = process_seconds(argv, env, 1, cwd=tree.root)
            seconds[tree.label][0].extend(wall)
            seconds[tree.label][1].extend(cpu)
    return seconds


def compared(name: str, seconds: dict[str, tuple[list[float], list[float]]]) -> dict[str, Any]:
    """Both trees' figures and current / baseline ratios (wall and CPU medians)."""
    baseline_label, current_label = seconds
    baseline, current = figure(seconds[baseline_label]), figure(seconds[current_label])
    ratio = current["median_s"] / baseline["median_s"]
    return {
        "baseline": baseline,
        "current": current,
        "ratio_wall": round(ratio, 3),
        "ratio_cpu": round(current["median_cpu_s"] / baseline["median_cpu_s"], 3),
        "target_ratio": round(TARGET_RATIOS[name], 3) if name in TARGET_RATIOS else None,
        "met": ratio <= TARGET_RATIOS[name] if name in TARGET_RATIOS else None,
    }


def measure_against(
    commit: str, repeats: int, runs: int, train_repeats: int, postgres: str | None = None
) -> dict[str, Any]:
    """``runs list`` and (with ``train_repeats``) ``trainq train`` on ``commit`` and on the
    current code, interleaved; each tree's home is seeded by that tree's own code. With
    ``postgres`` (a server URL), ``runs list`` on a PostgreSQL database of each tree's too."""
    current = CodeTree("current", CURRENT_ROOT)
    current.check_imports_itself()
    result: dict[str, Any] = {"baseline_commit": commit, "repeats": repeats, "stored_runs": runs}
    with baseline_tree(commit) as baseline, tempfile.TemporaryDirectory() as directory:
        trees = [baseline, current]
        homes = {tree.label: Path(directory) / f"home-{index}" for index, tree in enumerate(trees)}
        for tree in trees:
            tree.seed_home(homes[tree.label], runs)
            # One untimed start each, so both run from cached bytecode (see CodeTree.env).
            process_seconds(tree.trainq("runs", "list"), tree.env(homes[tree.label]), 1, tree.root)

        def runs_list(tree: CodeTree) -> tuple[list[str], dict[str, str]]:
            return tree.trainq("runs", "list"), tree.env(homes[tree.label])

        def train(tree: CodeTree) -> tuple[list[str], dict[str, str]]:
            # A fresh home each time, as a new user's first `trainq train` has.
            home = Path(tempfile.mkdtemp(dir=directory, prefix="train-"))
            return tree.trainq("train"), tree.env(home)

        load_before = os.getloadavg()[0]
        result["runs_list"] = compared("runs_list", paired_seconds(trees, repeats, runs_list))
        if postgres:
            with postgres_databases(postgres, len(trees)) as urls:
                on_postgres = {tree.label: url for tree, url in zip(trees, urls, strict=True)}

                def runs_list_postgres(tree: CodeTree) -> tuple[list[str], dict[str, str]]:
                    env = tree.env(homes[tree.label])
                    return tree.trainq("runs", "list"), env | {
                        "TRAINQ_DATABASE_URL": on_postgres[tree.label]
                    }

                for tree in trees:
                    tree.seed_home(homes[tree.label], runs, on_postgres[tree.label])
                seconds = paired_seconds(trees, repeats, runs_list_postgres)
                result["runs_list_postgres"] = compared("runs_list_postgres", seconds)
        if train_repeats:
            seconds = paired_seconds(trees, train_repeats, train)
            result["trainq_train"] = compared("trainq_train", seconds)
            result["train_repeats"] = train_repeats
        result["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
    return result


def print_against(result: dict[str, Any]) -> None:
    """The side-by-side report of :func:`measure_against`."""
    print(f"baseline {result['baseline_commit']} vs current, interleaved")
    for name in ("runs_list", "runs_list_postgres", "trainq_train"):
        if name not in result:
            continue
        shown = result[name]
        for side in ("baseline", "current"):
            one = shown[side]
            print(
                f"{name:18} {side:8} median {one['median_s']:.3f} s "
                f"(min {one['min_s']:.3f}, max {one['max_s']:.3f}), "
                f"CPU median {one['median_cpu_s']:.3f} s"
            )
        target = (
            ""
            if shown["target_ratio"] is None
            else f" (target <= {shown['target_ratio']:.3f}: {'met' if shown['met'] else 'NOT met'})"
        )
        print(
            f"{name:18} current/baseline: wall {shown['ratio_wall']:.3f}, CPU "
            f"{shown['ratio_cpu']:.3f}{target}"
        )
    load = result["load_average_1min"]
    print(f"load average (1 min): {load['before']:.2f} before, {load['after']:.2f} after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--train-repeats", type=int, default=0)
    parser.add_argument("--baseline-commit", help="Also measure this commit, interleaved.")
    parser.add_argument(
        "--postgres",
        metavar="SERVER_URL",
        help="With --baseline-commit: also `runs list` on PostgreSQL (a throwaway database per "
        "tree on this server, e.g. postgresql+psycopg://postgres@127.0.0.1:5432).",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.baseline_commit:
        paired = measure_against(
            args.baseline_commit, args.repeats, args.runs, args.train_repeats, args.postgres
        )
        if args.json:
            print(json.dumps(paired, indent=2))
        else:
            print_against(paired)
        return
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
