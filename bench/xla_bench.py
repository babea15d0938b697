"""XLA or a plain graph: the embedded ``trainq train`` as whole processes, both paths side by side.

    python -m bench.xla_bench [--lengths 500,2000,10000,50000] [--repeats 3] [--json]
                              [--baseline-commit REV]

For each run length, three kinds of process run in turn (so a burst of load on a shared machine
falls on all of them alike), ``--repeats`` times:

- ``auto``: ``trainq train --steps N`` as shipped, its path chosen by ``training.xla_choice``;
- ``graph`` and ``xla``: the same process with the choice forced (``choose_xla`` replaced).

All three share one home, primed first by one ``trainq train`` (the seed's job), as a user's home
is after its first run: XLA's compiled chunk is in the cache and the figures hold that run's
speeds. Beside them, ``import tensorflow`` as a process (trainq's quiet import, ended without the
interpreter's teardown as ``trainq train`` ends), the floor of any training process, and with
``--baseline-commit`` the seed's job as that commit's code trains it (``bench.code_trees``).
Every process starts from cached bytecode, as an installed trainq does.
``--cold`` also runs each kind in a new, empty home (the first run on a
machine: XLA must compile). The report gives medians of wall and CPU seconds, auto's ratio to the
better of the two forced paths (goal: at most 1.10) and, for the seed's job, auto's seconds beyond
TensorFlow's import (goal: at most 1.6 s), with the CPU model from ``/proc/cpuinfo``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.code_trees import CURRENT_ROOT, CodeTree, baseline_tree
from bench.startup_bench import figure, process_seconds

KINDS = ("auto", "graph", "xla")
SEED_STEPS = 10_000
GOAL_RATIO = 1.10
GOAL_BEYOND_IMPORT_S = 1.6

#: ``trainq train`` with the XLA choice forced to argv[1] ("graph" or "xla"), else as shipped.
TRAIN = """
import sys
kind = sys.argv.pop(1)
if kind != "auto":
    import worker.training.xla_choice as choice
    choice.choose_xla = lambda *_, **__: kind == "xla"
sys.argv[0] = "trainq"
from api_cli.entry import run
run()
"""

#: The floor: TensorFlow imported as trainq imports it, then the process ends as ``trainq train``
#: ends, without the interpreter's teardown (``worker.cluster.process_exit``).
IMPORT_TENSORFLOW = "import os, worker.tensorflow_import; os._exit(0)"


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def train_argv(kind: str, steps: int) -> list[str]:
    return [sys.executable, "-c", TRAIN, kind, "train", "--steps", str(steps)]


def measure(
    lengths: list[int], repeats: int, cold: bool, baseline: CodeTree | None = None
) -> dict[str, Any]:
    """Every kind at every length, interleaved; the import floor; optionally cold homes, and
    the seed's job as ``baseline``'s code trains it (in a home of its own: its schema may be
    older)."""
    seconds: dict[str, tuple[list[float], list[float]]] = {}
    current = CodeTree("current", CURRENT_ROOT)
    with tempfile.TemporaryDirectory(prefix="trainq-xla-bench-") as directory:
        home = Path(directory) / "home"
        env = current.env(home)
        process_seconds(train_argv("auto", SEED_STEPS), env, 1)  # the home's first run
        if baseline is not None:
            baseline_env = baseline.env(Path(directory) / "baseline-home")
            process_seconds(baseline.trainq("train"), baseline_env, 1, cwd=baseline.root)
        load_before = os.getloadavg()[0]
        for _ in range(repeats):
            wall, cpu = process_seconds([sys.executable, "-c", IMPORT_TENSORFLOW], env, 1)
            floor = seconds.setdefault("import_tensorflow", ([], []))
            floor[0].extend(wall)
            floor[1].extend(cpu)
            if baseline is not None:
                argv = baseline.trainq("train", "--steps", str(SEED_STEPS))
                wall, cpu = process_seconds(argv, baseline_env, 1, cwd=baseline.root)
                entry = seconds.setdefault(f"baseline@{SEED_STEPS}", ([], []))
                entry[0].extend(wall)
                entry[1].extend(cpu)
            for steps in lengths:
                for kind in KINDS:
                    wall, cpu = process_seconds(train_argv(kind, steps), env, 1)
                    entry = seconds.setdefault(f"{kind}@{steps}", ([], []))
                    entry[0].extend(wall)
                    entry[1].extend(cpu)
                    if cold:
                        fresh = current.env(Path(directory) / f"cold-{kind}-{steps}-{_}")
                        wall, cpu = process_seconds(train_argv(kind, steps), fresh, 1)
                        entry = seconds.setdefault(f"cold {kind}@{steps}", ([], []))
                        entry[0].extend(wall)
                        entry[1].extend(cpu)
        figures_file = next((home / "xla").glob("*/figures.json"), None)
        figures = json.loads(figures_file.read_text()) if figures_file else None
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "repeats": repeats,
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "processes": {name: figure(pair) for name, pair in seconds.items()},
        "home_figures": figures,
    }


def verdicts(result: dict[str, Any], lengths: list[int]) -> dict[str, Any]:
    """auto against the better forced path per length, and the seed's job beyond the import."""
    processes = result["processes"]
    out: dict[str, Any] = {}
    for prefix in ("", "cold "):
        for steps in lengths:
            if f"{prefix}auto@{steps}" not in processes:
                continue
            # Wall is the goal; CPU seconds are the steadier figure on a loaded machine.
            for figure_name, label in (("median_s", "wall"), ("median_cpu_s", "cpu")):
                auto = processes[f"{prefix}auto@{steps}"][figure_name]
                best = min(processes[f"{prefix}{k}@{steps}"][figure_name] for k in KINDS[1:])
                ratio = auto / best
                met = ratio <= GOAL_RATIO
                out[f"{prefix}auto/best {label}@{steps}"] = {"ratio": round(ratio, 3), "met": met}
    if f"auto@{SEED_STEPS}" in processes:
        floor = processes["import_tensorflow"]["median_s"]
        beyond = processes[f"auto@{SEED_STEPS}"]["median_s"] - floor
        out["seed_job_beyond_import_s"] = {
            "seconds": round(beyond, 3),
            "met": beyond <= GOAL_BEYOND_IMPORT_S,
        }
        if f"baseline@{SEED_STEPS}" in processes:
            before = processes[f"baseline@{SEED_STEPS}"]["median_s"] - floor
            out["baseline_seed_job_beyond_import_s"] = {
                "seconds": round(before, 3),
                "met": before <= GOAL_BEYOND_IMPORT_S,
            }
    return out


def render(result: dict[str, Any], checks: dict[str, Any]) -> str:
    lines = [
        f"{result['cpu']} ({result['cpus']} CPUs), {result['repeats']} repeats, "
        f"1-min load average before/after: {result['load_average_1min']}",
        "process                     median wall   median CPU",
    ]
    for name, values in result["processes"].items():
        lines.append(f"  {name:<24} {values['median_s']:>9.2f} s  {values['median_cpu_s']:>9.2f} s")
    for name, verdict in checks.items():
        value = verdict.get("ratio", verdict.get("seconds"))
        lines.append(f"  {name:<32} {value:>7}  {'met' if verdict['met'] else 'NOT met'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.xla_bench", description=__doc__)
    parser.add_argument("--lengths", default="500,2000,10000,50000", help="steps, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="processes per kind and length")
    parser.add_argument("--cold", action="store_true", help="also each kind in an empty home")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--baseline-commit", help="also the seed's job as this commit trains it, interleaved"
    )
    options = parser.parse_args()
    lengths = [int(part) for part in options.lengths.split(",")]
    if options.baseline_commit:
        with baseline_tree(options.baseline_commit) as baseline:
            result = measure(lengths, options.repeats, options.cold, baseline)
        result["baseline_commit"] = options.baseline_commit
    else:
        result = measure(lengths, options.repeats, options.cold)
    checks = verdicts(result, lengths)
    if options.json:
        print(json.dumps({**result, "verdicts": checks}, indent=2))
    else:
        print(render(result, checks))


if __name__ == "__main__":
    main()
