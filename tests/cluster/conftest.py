"""Fixtures for the cluster packaging tests: Docker Compose must be installed (skip locally when it
is not, fail in CI), but no Docker engine is needed: `docker compose config` only validates."""

from __future__ import annotations

import os

import pytest

from tests.cluster.compose import ComposeConfig, compose_cli, resolved_config


@pytest.fixture(scope="session")
def compose_installed() -> None:
    """Skip (fail in CI) when neither docker-compose nor the docker compose plugin is installed."""
    if compose_cli() is None:
        message = "Docker Compose is not installed (docker-compose or the docker compose plugin)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def config(compose_installed: None) -> ComposeConfig:
    """docker-compose.yml resolved by Docker Compose with the test secrets, every profile on."""
    return resolved_config()
