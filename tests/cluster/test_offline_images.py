"""What deploy/offline-images.sh relies on, checked without an engine: the compose file keeps the
official image names and lets each be overridden, and the image's requirements list CPU-only
TensorFlow unless the gpu extra is asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cluster.compose import REPO_ROOT, TEST_SECRETS, ComposeConfig, resolved_config

REQUIREMENTS_SCRIPT = REPO_ROOT / "deploy" / "images" / "requirements.py"
OFFICIAL = {
    "redis": "redis:7-bookworm",
    "postgres": "postgres:16-bookworm",
    "worker": "trainq:latest",
}
OVERRIDES = {"REDIS_IMAGE": "local/redis:1", "POSTGRES_IMAGE": "local/pg:1", "TRAINQ_IMAGE": "t:1"}


def images(config: ComposeConfig) -> dict[str, str]:
    return {name: config["services"][name]["image"] for name in OFFICIAL}


def image_requirements(extras: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(REQUIREMENTS_SCRIPT), str(REPO_ROOT / "pyproject.toml"), extras],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def test_the_compose_file_names_the_official_images_by_default(config: ComposeConfig) -> None:
    assert images(config) == OFFICIAL


@pytest.mark.usefixtures("compose_installed")
def test_each_image_can_be_replaced_by_a_local_one_through_its_variable() -> None:
    config = resolved_config({**TEST_SECRETS, **OVERRIDES})

    assert images(config) == {"redis": "local/redis:1", "postgres": "local/pg:1", "worker": "t:1"}


def test_the_cpu_image_installs_tensorflow_cpu_and_the_gpu_image_full_tensorflow() -> None:
    cpu = image_requirements("flower")
    gpu = image_requirements("flower,gpu")

    assert any(line.startswith("tensorflow-cpu>=") for line in cpu)
    assert not any(line.startswith("tensorflow>=") for line in cpu)
    assert any(line.startswith("tensorflow[and-cuda]") for line in gpu)
    assert any(line.startswith("flower") for line in cpu)
