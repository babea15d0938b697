"""The live cluster: started once for this package's tests (``up -d --scale worker=2``), shared by
the ``compose`` tests, each of which gets it back with two ready workers, and always taken down with
its volumes. A missing Docker engine fails the tests in CI (CI set) and skips them elsewhere."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.live.live import LiveCluster, engine_problem, report


@pytest.fixture(scope="package")
def live_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    """A started cluster for this package's tests; ``down -v`` after them, whatever happened."""
    problem = engine_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    cluster = LiveCluster.create(Path(tmp_path_factory.mktemp("compose")))
    start = time.monotonic()
    try:
        cluster.up(workers=2)
        report(
            "compose up -d --scale worker=2 (images built)",
            wall_s=round(time.monotonic() - start, 1),
        )
        yield cluster
    finally:
        cluster.down(volumes=True)


@pytest.fixture
def live(live_session: LiveCluster) -> LiveCluster:
    """The session's cluster with every service up and exactly two workers ready."""
    live_session.up(workers=2)
    return live_session
