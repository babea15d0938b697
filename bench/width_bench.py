"""Steps/s of the seed's job against an earlier commit, and of models of other widths.

1. The seed's job (Fashion-MNIST, batch 128, learning rate 0.01, 10,000 steps, XLA) in fresh
   processes, alternately from this tree and from ``--baseline-commit`` checked out in a
   temporary ``git worktree``: each process trains once cold (tracing and compiling), then three
   warm jobs of other seeds; its figure is the median warm steps/s (whole ``train`` calls,
   every chunk's metrics delivered). The ratio is this tree's median over the baseline's, over
   ``--rounds`` processes each. The final weights of the cold job are hashed in both trees: the
   same hash says the default path is bit-identical.
2. This tree alone: steps/s of a float model of D = 64, C = 10 (scikit-learn's digits,
   standardised) and of D = 10,000, C = 100 (random standardised features, 2,000 rows), batch
   128, warm (median of three).

Run::

    python -m bench.width_bench --baseline-commit COMMIT [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: One process's measurement of the seed's job; runs in either tree (only APIs both have).
_SEED_JOB = """
import hashlib, json, statistics, sys, time
from worker.config import TrainConfig
from worker.data import load_fashion_mnist
from worker.training import configure_tensorflow, train

configure_tensorflow()
data = load_fashion_mnist(download=False)
config = TrainConfig(steps=10_000, batch_size=128, learning_rate=0.01, seed=1)
cold = train(config, data)
digest = hashlib.sha256(
    b"".join(cold.state.arrays[name].tobytes() for name in sorted(cold.state.arrays))
).hexdigest()
warm = []
for seed in (2, 3, 4):
    started = time.perf_counter()
    result = train(config.model_copy(update={"seed": seed}), data, on_chunk=lambda report: None)
    warm.append(result.steps_run / (time.perf_counter() - started))
print(json.dumps({"steps_per_s": statistics.median(warm), "weights_sha256": digest}))
"""


def seed_job_in(tree: Path) -> dict[str, Any]:
    """Measure the seed's job in a fresh process running the code of ``tree``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
    env |= {"PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", _SEED_JOB],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def compare_seed_job(baseline_commit: str, rounds: int) -> dict[str, Any]:
    """Alternate processes of this tree and of the baseline; their medians and ratio."""
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="trainq-baseline-") as parent:
        baseline = Path(parent) / "tree"
        subprocess.run(
            ["git", "-C", str(here), "worktree", "add", "--detach", str(baseline), baseline_commit],
            check=True,
            capture_output=True,
        )
        try:
            runs: dict[str, list[dict[str, Any]]] = {"current": [], "baseline": []}
            for _ in range(rounds):
                runs["baseline"].append(seed_job_in(baseline))
                runs["current"].append(seed_job_in(here))
        finally:
            subprocess.run(
                ["git", "-C", str(here), "worktree", "remove", "--force", str(baseline)],
                check=False,
                capture_output=True,
            )
    medians = {
        tree: statistics.median(run["steps_per_s"] for run in measured)
        for tree, measured in runs.items()
    }
    hashes = {tree: {run["weights_sha256"] for run in measured} for tree, measured in runs.items()}
    return {
        "baseline_commit": baseline_commit,
        "rounds": rounds,
        "steps_per_s": medians,
        "each": {tree: [run["steps_per_s"] for run in measured] for tree, measured in runs.items()},
        "ratio_current_over_baseline": medians["current"] / medians["baseline"],
        "bit_identical": hashes["current"] == hashes["baseline"] and len(hashes["current"]) == 1,
    }


def width_figures() -> dict[str, Any]:
    """Warm steps/s of float models of D = 64, C = 10 and D = 10,000, C = 100 (this tree)."""
    import numpy as np
    from sklearn.datasets import load_digits

    from worker.config import TrainConfig
    from worker.datasets import RawSplit, build_version
    from worker.datasets.problems import Origin
    from worker.training import configure_tensorflow, train
    from worker.training_data import from_version

    configure_tensorflow()

    def ready(x: Any, y: Any, label: str) -> Any:
        split = RawSplit(x, y, Origin(None, "train", "x"), Origin(None, "train", "y"))
        return from_version(build_version(split), label=label)

    digits = load_digits()
    rng = np.random.default_rng(0)
    wide_y = np.arange(2_000) % 100
    wide_x = rng.normal(size=(2_000, 10_000)).astype(np.float32)
    cases = {
        "d64_c10": (ready(digits.data, digits.target, "digits"), 10_000),
        "d10000_c100": (ready(wide_x, wide_y, "wide"), 1_000),
    }
    figures: dict[str, Any] = {}
    for name, (data, steps) in cases.items():
        config = TrainConfig(steps=steps, batch_size=128, learning_rate=0.01, seed=1)
        train(config, data)  # cold: trace and compile this width
        warm = []
        for seed in (2, 3, 4):
            started = time.perf_counter()
            result = train(config.model_copy(update={"seed": seed}), data)
            warm.append(result.steps_run / (time.perf_counter() - started))
        figures[name] = {
            "features": data.dims.features,
            "classes": data.dims.classes,
            "steps": steps,
            "steps_per_s": statistics.median(warm),
        }
    return figures


def main() -> None:
    """Parse the options, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-commit", required=True, help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="processes per tree")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    options = parser.parse_args()
    load_before = os.getloadavg()[0]
    figures = {
        "seed_job": compare_seed_job(options.baseline_commit, options.rounds),
        "widths": width_figures(),
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "cpus": os.cpu_count(),
    }
    if options.json:
        print(json.dumps(figures, indent=1))
        return
    seed = figures["seed_job"]
    print(
        f"seed's job, steps/s (median of {seed['rounds']} processes, warm): this tree "
        f"{seed['steps_per_s']['current']:,.0f}, {seed['baseline_commit'][:10]} "
        f"{seed['steps_per_s']['baseline']:,.0f}; ratio {seed['ratio_current_over_baseline']:.3f}; "
        f"final weights bit-identical: {seed['bit_identical']}"
    )
    for name, width in figures["widths"].items():
        print(
            f"D={width['features']:,} C={width['classes']:,} (float, batch 128): "
            f"{width['steps_per_s']:,.0f} steps/s ({name})"
        )
    print(f"load average (1 min) before/after: {figures['load_average_1min']}")


if __name__ == "__main__":
    main()
