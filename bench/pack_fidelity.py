"""Packed against alone: the same mathematics? (issue 19, "the same mathematics as training alone")

Runs a packed sweep embedded (SQLite in a temporary home), takes its best trial (chosen on the
validation split only), trains that trial's config again alone (``pack: 1``, no narrowing: today's
single-run path) and prints the largest absolute difference of the final weights and the two test
accuracies. Then it trains the same trial alone *at its recorded widths* (``pack`` and
``pack_narrows`` kept: one seat of a pack of that width) and says whether that repeats the packed
weights bit for bit, which is what a takeover or a rerun relies on.

    python -m bench.pack_fidelity                 # the issue's 64-trial sweep, max_concurrent 64
    python -m bench.pack_fidelity --quick         # 16 trials of 3,000 steps
"""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

import numpy as np

from bench.sweep_bench import ISSUE_SWEEP_FILE
from storage import Database, Repository, Settings
from worker.config import parse_train_config
from worker.jobs import JobContext
from worker.sweep_file import parse_sweep_text
from worker.sweep_report import sweep_report
from worker.sweep_runner import run_sweep_here
from worker.sweeps import submit_sweep


def sweep_file(*, quick: bool) -> dict[str, Any]:
    data = parse_sweep_text(ISSUE_SWEEP_FILE.read_text())
    data["max_concurrent"] = 64
    data["pack"] = "auto"
    if quick:
        data["run_cap"] = 16
        data["parameters"]["steps"] = {"value": 3000}
        data["early_terminate"]["min_steps"] = 500
    return data


def test_accuracy(arrays: dict[str, np.ndarray]) -> float:
    from worker.data import load_fashion_mnist

    data = load_fashion_mnist()
    logits = (data.test_images.astype(np.float32) / 255) @ arrays["W"] + arrays["b"]
    return float(np.mean(logits.argmax(axis=1) == data.test_labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 trials of 3,000 steps")
    args = parser.parse_args()
    from worker.data import load_fashion_mnist
    from worker.training import train

    with tempfile.TemporaryDirectory() as home:
        settings = Settings.from_env({"TRAINQ_HOME": home})
        database = Database(settings.database_url)
        database.upgrade()
        repository = Repository(database)
        sweep = submit_sweep(repository, sweep_file(quick=args.quick), max_attempts=3)
        run_sweep_here(JobContext.for_this_process(repository, settings, "bench"), sweep.id)
        best = sweep_report(repository, sweep.id).best
        assert best is not None
        run = repository.get_run(best.run_id)
        packed = dict(repository.get_checkpoint(run.id, run.steps_done).arrays)
        config = parse_train_config(run.config).model_copy(update={"steps": run.steps_done})
        data = load_fashion_mnist()
        alone = train(config.model_copy(update={"pack": 1, "pack_narrows": ()}), data)
        at_its_widths = train(config, data)
        difference = max(
            float(np.max(np.abs(packed[name] - alone.state.arrays[name]))) for name in ("W", "b")
        )
        same_bits = all(
            np.array_equal(packed[name], at_its_widths.state.arrays[name]) for name in packed
        )
        print(
            json.dumps(
                {
                    "sweep": {"pack": repository.get_sweep(sweep.id).spec.get("pack")},
                    "best_trial": best.trial,
                    "params": best.params,
                    "steps": run.steps_done,
                    "pack_width": config.pack,
                    "pack_narrows": [list(n) for n in config.pack_narrows],
                    "max_abs_weight_difference_alone": difference,
                    "test_accuracy_packed": test_accuracy(packed),
                    "test_accuracy_alone": test_accuracy(dict(alone.state.arrays)),
                    "alone_at_its_widths_is_bit_identical": same_bits,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
