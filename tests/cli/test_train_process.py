"""An embedded `trainq train` trains in a trainer process forked before anything else is imported.

The CLI's own process stores the run, follows it and writes every chunk, but never imports
TensorFlow; the trainer process imports it from the first moment. If the trainer process is
killed, the run stops resumable, the CLI says how to continue, and `trainq resume` finishes it
bit for bit as if nothing had happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from storage import Database, Repository
from storage.records import RunStatus
from tests.cli.conftest import embedded_env, python_in, trainq_in, wait_for_run_1

#: `trainq train` through the console script's entry, saying what was imported when the trainer
#: process was forked and, at the end, whether the CLI's process ever imported TensorFlow.
_PROBE = """
import os, sys
from worker.training import trainer_process
import worker.cluster.process_exit as process_exit

heavy = ("typer", "sqlalchemy", "tensorflow")
fork = trainer_process.TrainerProcess.fork.__func__

def forking(cls):
    loaded = sorted(m for m in heavy if m in sys.modules)
    print("loaded when the trainer process is forked:", loaded, flush=True)
    return fork(cls)

trainer_process.TrainerProcess.fork = classmethod(forking)
leave = process_exit.exit_without_teardown

def leaving(code):
    print("tensorflow in the CLI's process:", "tensorflow" in sys.modules, flush=True)
    leave(code)

process_exit.exit_without_teardown = leaving
sys.argv = ["trainq", "train", "--steps", "1000", "--seed", "3"]
from api_cli.entry import run
run()
"""


def test_the_cli_forks_its_trainer_first_and_never_imports_tensorflow(tmp_path: Path) -> None:
    probe = python_in(tmp_path, "-c", _PROBE)
    assert probe.returncode == 0, probe.stderr
    assert "loaded when the trainer process is forked: []" in probe.stdout
    assert "tensorflow in the CLI's process: False" in probe.stdout
    assert "run 1 succeeded: 1,000 steps on CPU:0" in probe.stdout
    repository = Repository(Database(f"sqlite:///{tmp_path / 'trainq.db'}"))
    steps = [row.step for row in repository.read_metrics(1)]
    assert steps == list(range(1, 1001))


def _trainer_of(pid: int) -> int:
    """The one child process of ``pid``: its trainer process."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _wait_for_checkpoint(repository: Repository, process: subprocess.Popen[str]) -> None:
    wait_for_run_1(
        repository,
        process,
        lambda r: bool(r.list_checkpoints(1)),
        "stored a checkpoint",
        timeout_s=120,
    )


def test_a_killed_trainer_process_leaves_the_run_resumable_and_resume_ends_it_bit_identical(
    tmp_path: Path,
) -> None:
    options = ["--steps", "60000", "--seed", "5", "--checkpoint-every", "5000"]
    home = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "api_cli", "train", *options],
        env=embedded_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    repository = Repository(Database(f"sqlite:///{home / 'trainq.db'}"))
    try:
        _wait_for_checkpoint(repository, process)
        os.kill(_trainer_of(process.pid), signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 75, stderr
    assert "run 1: the trainer process was killed by SIGKILL" in stderr
    stopped = repository.get_run(1)
    assert stopped.status is RunStatus.QUEUED and 0 < stopped.steps_done < 60_000
    assert (
        f"run 1 stopped at step {stopped.steps_done:,} before it finished; it keeps its "
        "checkpoints — continue with `trainq resume 1`"
    ) in " ".join(stderr.split())
    assert "Traceback" not in stderr

    resumed = trainq_in(home, "resume", "1")
    assert resumed.returncode == 0, resumed.stderr
    uninterrupted = trainq_in(tmp_path / "whole", "train", *options)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    whole = Repository(Database(f"sqlite:///{tmp_path / 'whole' / 'trainq.db'}"))
    assert [row.step for row in repository.read_metrics(1)] == list(range(1, 60_001))
    ours, theirs = repository.get_checkpoint(1, 60_000), whole.get_checkpoint(1, 60_000)
    for name, array in theirs.arrays.items():
        assert np.array_equal(ours.arrays[name], array), name
