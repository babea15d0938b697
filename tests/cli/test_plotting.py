"""Curves for plots: downsampled from storage, bucketed, smoothed; braille charts that fit."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from api_cli.plotting.choices import Metric
from api_cli.plotting.curves import (
    SAMPLES_PER_POINT,
    Curve,
    bucket_means,
    load_curve,
    smooth,
    stride_for,
)
from api_cli.plotting.terminal import render_chart
from api_cli.sdk import Client
from storage import JobKind, MetricChunk, Settings

MILLION = 1_000_000
CHUNK_STEPS = 10_000


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(Settings.from_env({"TRAINQ_HOME": str(tmp_path)}))


def store_a_million_steps(client: Client) -> int:
    """A run whose loss at step s is 1 + 1/sqrt(s), plus noise: stored as 100 chunks."""
    repository = client.repository
    run = repository.create_run(
        kind=JobKind.TRAIN, config={"steps": MILLION}, seed=1, queue="train", max_attempts=1
    )
    claimed = repository.claim_run(run.id, owner="test", worker_host="test", lease_ttl_s=60)
    assert claimed is not None
    noise = np.random.default_rng(0)
    for first in range(1, MILLION, CHUNK_STEPS):
        steps = np.arange(first, first + CHUNK_STEPS, dtype=np.float32)
        loss = 1 + 1 / np.sqrt(steps) + noise.normal(0, 0.3, CHUNK_STEPS).astype(np.float32)
        chunk = MetricChunk(first, loss, np.full(CHUNK_STEPS, 0.5, np.float32))
        repository.record_chunk(run.id, claimed.attempt, chunk, lease_ttl_s=60)
    return run.id


def test_a_million_steps_are_read_one_in_k_and_drawn_as_a_thousand_smooth_points(
    client: Client,
) -> None:
    run_id = store_a_million_steps(client)
    run = client.run(run_id)
    assert run.steps_done == MILLION
    assert stride_for(MILLION, 1_000) == MILLION // (1_000 * SAMPLES_PER_POINT)
    curve = load_curve(client, run, Metric.LOSS, points=1_000, smoothing=0.6)
    assert len(curve.steps) == 1_000 and curve.steps[-1] == MILLION
    # Each point is the mean of 8 samples of noise sd 0.3: the smoothed curve is close to 1.
    assert abs(float(np.mean(curve.smoothed[100:])) - 1.0) < 0.02
    assert float(np.std(curve.smoothed[100:])) < 0.1


def test_bucket_means_leave_non_finite_values_out() -> None:
    steps = np.arange(1, 7, dtype=np.int64)
    values = np.array([1.0, np.nan, 3.0, np.inf, np.nan, np.nan], dtype=np.float32)
    ends, means = bucket_means(steps, values, points=3)
    assert ends.tolist() == [2.0, 4.0, 6.0]
    assert means[0] == 1.0 and means[1] == 3.0 and math.isnan(means[2])


def test_smoothing_is_bias_corrected_and_skips_gaps() -> None:
    smoothed = smooth(np.array([2.0, np.nan, 2.0, 2.0]), 0.9)
    assert smoothed[0] == pytest.approx(2.0) and math.isnan(smoothed[1])
    assert smoothed[3] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="smoothing"):
        smooth(np.array([1.0]), 1.0)


@pytest.mark.parametrize("colour", [True, False])
@pytest.mark.parametrize("width", [80, 120])
def test_the_terminal_chart_fits_the_width_it_is_given(colour: bool, width: int) -> None:
    steps = np.linspace(1, 50_000, 300)
    curves = [
        Curve(run_id, f"run {run_id}", steps, 1 / np.sqrt(steps) * run_id, 1 / np.sqrt(steps))
        for run_id in (1, 2, 3)
    ]
    lines = render_chart(curves, title="loss", width=width, height=12, colour=colour)
    assert max(line.cell_len for line in lines) < width
    plotted = "".join(line.plain for line in lines)
    assert any("\u2801" <= char <= "\u28ff" for char in plotted)
    assert all(f"run {run_id}" in plotted for run_id in (1, 2, 3))


def test_trainq_help_imports_neither_matplotlib_nor_numpy() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "api_cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "plot" in result.stdout and "compare" in result.stdout
    assert not {"matplotlib", "numpy", "tensorflow"} & imported
