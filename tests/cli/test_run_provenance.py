"""Each run records what trained it: the versions of trainq, TensorFlow, NumPy and Python, and
the host."""

from __future__ import annotations

import json
import platform
import socket
from importlib.metadata import version

import numpy

from tests.cli.conftest import Trainq


def test_a_finished_run_records_the_versions_and_the_host_that_trained_it(
    trainq: Trainq,
) -> None:
    trained = trainq("train", "--steps", "100", "--json")
    assert trained.returncode == 0, trained.stderr
    run = json.loads(trained.stdout)
    versions = run["summary"]["versions"]
    assert versions["trainq"] == version("trainq")
    assert versions["numpy"] == numpy.__version__
    assert versions["python"] == platform.python_version()
    assert versions["tensorflow"] == version("tensorflow")
    shown = json.loads(trainq("runs", "show", str(run["id"]), "--format", "json").stdout)
    assert shown["worker_host"] == socket.gethostname()
