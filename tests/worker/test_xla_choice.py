"""XLA or a plain graph: the path that this machine's figures say ends sooner, kept with the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from storage import Database, JobKind, Repository, RunStatus, Settings
from worker.config import TrainConfig
from worker.data import FashionMnist
from worker.jobs import JobContext, execute_job
from worker.training import xla_choice
from worker.training.state import TrainingState, TrainResult
from worker.training.xla_choice import (
    DEFAULT_FIGURES,
    Figures,
    Measurements,
    choose_xla,
    load_measurements,
    prefers_xla,
    record_run,
    shape_key,
)

ROOT = Path(__file__).resolve().parents[2]

# Issue 16's 2-core EPYC: XLA steps 2.1x the graph's; compiling costs 0.8 s more than tracing.
EPYC = Figures(
    graph_steps_per_s=2_339,
    xla_steps_per_s=5_025,
    graph_setup_s=0.4,
    xla_compile_setup_s=1.2,
    xla_cached_setup_s=0.4,
)


def test_a_short_run_skips_an_uncached_compile_and_a_long_one_pays_it() -> None:
    crossover = (1.2 - 0.4) / (1 / 2_339 - 1 / 5_025)  # ~3,500 steps
    assert not prefers_xla(int(crossover) - 50, EPYC, compiled=False)
    assert prefers_xla(int(crossover) + 50, EPYC, compiled=False)
    assert prefers_xla(10_000, EPYC, compiled=False)  # the seed's job


def test_a_compiled_chunk_in_the_cache_makes_xla_the_choice_at_any_length() -> None:
    assert all(prefers_xla(steps, EPYC, compiled=True) for steps in (1, 500, 10_000, 50_000))


def test_a_cpu_whose_xla_steps_are_slower_keeps_the_graph_at_any_length() -> None:
    slow_xla = Figures(5_000, 4_000, 0.4, 1.0, 0.4)
    assert not any(prefers_xla(n, slow_xla, compiled=True) for n in (500, 10_000, 1_000_000))


def test_figures_are_medians_of_observations_and_a_lone_speed_stands_in_for_the_other() -> None:
    measured = Measurements({})
    for value in (4_000.0, 9_000.0, 5_000.0):  # one outlier on a shared machine
        measured = measured.observe("xla_steps_per_s", value)
    figures = measured.figures()
    assert figures.xla_steps_per_s == 5_000.0
    ratio = DEFAULT_FIGURES.xla_steps_per_s / DEFAULT_FIGURES.graph_steps_per_s
    assert figures.graph_steps_per_s == pytest.approx(5_000.0 / ratio)
    assert figures.graph_setup_s == DEFAULT_FIGURES.graph_setup_s  # nothing measured
    for value in range(10):
        measured = measured.observe("graph_setup_s", float(value))
    assert measured.observed["graph_setup_s"] == tuple(float(v) for v in range(5, 10))


def test_a_fresh_home_compiles_the_seeds_job_with_xla_but_not_a_quick_run(tmp_path: Path) -> None:
    # Nothing measured: the defaults make the first long-enough run compile XLA once for all.
    assert choose_xla(TrainConfig(), tmp_path)
    assert not choose_xla(TrainConfig(steps=500), tmp_path)


def result(steps: int, seconds: float, steps_per_s: float) -> TrainResult:
    state = TrainingState(step=steps, arrays={})
    return TrainResult(
        state, True, steps, "CPU:0", seconds, steps / seconds, None, None, steps_per_s
    )


def test_what_runs_measured_decides_the_next_choice_here(tmp_path: Path) -> None:
    graph, xla = TrainConfig(steps=2_000, xla=False), TrainConfig(steps=2_000, xla=True)
    # This machine measured XLA's steps slower than the graph's, its compile paid once.
    record_run(tmp_path, xla, result(2_000, 2.0, 1_250.0), traced=True)
    record_run(tmp_path, graph, result(2_000, 1.0, 2_500.0), traced=True)
    measured = load_measurements(tmp_path)
    assert measured.xla_shapes == {shape_key(xla)}
    assert measured.observed["xla_compile_setup_s"] == pytest.approx((0.4,))
    assert measured.observed["graph_setup_s"] == pytest.approx((0.2,))
    assert not choose_xla(TrainConfig(steps=50_000), tmp_path)
    # A warm process's second run traced nothing: its speed counts, its set-up does not.
    record_run(tmp_path, xla, result(2_000, 0.2, 10_000.0), traced=False)
    after = load_measurements(tmp_path).observed
    assert after["xla_steps_per_s"] == (1_250.0, 10_000.0) and "xla_cached_setup_s" not in after


def test_a_single_chunk_measures_nothing_its_speed_includes_the_compile(tmp_path: Path) -> None:
    record_run(tmp_path, TrainConfig(steps=500, xla=True), result(500, 1.0, 500.0), traced=True)
    assert load_measurements(tmp_path).observed == {}


def test_unreadable_figures_are_no_figures(tmp_path: Path) -> None:
    path = xla_choice.host_directory(tmp_path) / "figures.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"observed": {"graph_steps_per_s": "fast"}, "xla_shapes": []}))
    assert load_measurements(tmp_path) == Measurements({})


def test_a_choice_already_recorded_is_kept_whatever_the_figures_say(tmp_path: Path) -> None:
    from trainq import Client

    settings = Settings.from_env({"TRAINQ_HOME": str(tmp_path)})
    record_run(tmp_path, TrainConfig(xla=True), result(2_000, 2.0, 1_000.0), traced=True)
    record_run(tmp_path, TrainConfig(xla=False), result(2_000, 1.0, 4_000.0), traced=True)
    assert not choose_xla(TrainConfig(steps=50_000), tmp_path)  # the figures say "graph"
    with Client(settings) as client:
        assert client.ready_for_one_run(TrainConfig(steps=50_000, xla=True)).xla is True
        assert client.ready_for_one_run(TrainConfig(steps=50_000)).xla is False
    assert TrainConfig(xla=True).resolved(xla=False).xla is True


def test_a_resumed_run_trains_on_the_path_recorded_with_it(
    tmp_path: Path, fashion_mnist: FashionMnist
) -> None:
    # The home's figures favour XLA at any length; the run was stored as a graph run.
    record_run(tmp_path, TrainConfig(xla=True), result(2_000, 0.5, 8_000.0), traced=True)
    assert choose_xla(TrainConfig(steps=600), tmp_path)
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.upgrade()
    repository = Repository(database)
    config = TrainConfig(steps=600, chunk_steps=100, seed=3, xla=False)
    run = repository.create_run(
        kind=JobKind.TRAIN,
        config=config.model_dump(mode="json"),
        seed=3,
        queue="train",
        max_attempts=1,
    )
    settings = Settings(home_dir=tmp_path, database_url="unused", broker_url=None, data_dir=None)
    finished = execute_job(JobContext.for_this_process(repository, settings, "test"), run.id)
    assert finished is not None and finished.status is RunStatus.SUCCEEDED
    # The job measured the graph's speed: it trained on the recorded path, not the favoured one.
    assert len(load_measurements(tmp_path).observed["graph_steps_per_s"]) == 1


#: Trains 300 steps with XLA in a fresh process keeping its compiled chunk under argv[1]; prints
#: the final weights' bytes as hex.
CHILD = """
import sys
from pathlib import Path
from worker.training.xla_choice import use_compile_cache
assert use_compile_cache(Path(sys.argv[1]))
from worker.config import TrainConfig
from worker.data import load_fashion_mnist
from worker.training import train
state = train(TrainConfig(steps=300, chunk_steps=100, seed=5, xla=True), load_fashion_mnist()).state
print(state.arrays["W"].tobytes().hex() + state.arrays["b"].tobytes().hex())
"""


def test_a_chunk_loaded_from_the_cache_trains_bit_identical_to_a_fresh_compile(
    tmp_path: Path, fashion_mnist: FashionMnist
) -> None:
    def child() -> str:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    compiled = child()
    cached_files = sorted((xla_choice.host_directory(tmp_path) / "compiled").iterdir())
    assert len(cached_files) == 1
    mtime = cached_files[0].stat().st_mtime_ns
    loaded = child()
    assert compiled == loaded
    assert cached_files[0].stat().st_mtime_ns == mtime  # loaded, not compiled and written again
    weights = np.frombuffer(bytes.fromhex(compiled), np.float32)
    assert np.all(np.isfinite(weights)) and weights.size == 784 * 10 + 10
