"""TensorFlow's thread pools follow the CPUs a container was granted, not the host's core count."""

from __future__ import annotations

import pytest

from worker.training.runtime import cpus_from_cpu_max


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [
        ("200000 100000\n", 2),  # docker run --cpus 2
        ("150000 100000", 2),  # 1.5 CPUs: round up, a thread must not sit idle
        ("50000 100000", 1),
        ("max 100000\n", None),  # no limit
        (None, None),  # cgroup v1, or not Linux
        ("", None),
        ("garbage", None),
        ("100000 0", None),
    ],
)
def test_the_cgroup_cpu_quota_is_read_as_whole_cpus(cpu_max: str | None, cpus: int | None) -> None:
    assert cpus_from_cpu_max(cpu_max) == cpus
