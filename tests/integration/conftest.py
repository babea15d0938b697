"""Fixtures for tests that need the real PostgreSQL, Redis and `trainq worker` processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Cluster, cluster_environment
from tests.services import require_postgres, require_redis


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A fresh cluster per test (database, Redis db); the test starts its own workers."""
    require_postgres()
    require_redis()
    name = f"trainq_it_{os.getpid()}_{request.node.name[:30].lower()}"
    with cluster_environment(tmp_path, name) as environment:
        yield environment
