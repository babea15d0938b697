"""A closed output (`trainq train | head -1`) keeps the work as Ctrl-C does, and a run whose
process died on this host is shown as such, with the command that continues it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Database, Repository
from storage.records import JobKind, RunStatus
from tests.cli.conftest import embedded_env, trainq_in
from worker.jobs import lease_owner_name

pytestmark = pytest.mark.slow

OUTPUT_CLOSED = 141


def in_bash(home: Path, pipeline: str) -> subprocess.CompletedProcess[str]:
    """Run ``pipeline`` (`trainq ... | reader`) in bash, with this checkout's trainq, embedded."""
    command = pipeline.replace("trainq", f"{sys.executable} -m api_cli", 1)
    return subprocess.run(
        ["bash", "-c", command],
        env=embedded_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def in_a_pipeline(home: Path, pipeline: str) -> list[int]:
    """Run `trainq ... | reader` in bash and return every command's exit code."""
    result = in_bash(home, f'{pipeline}; echo "${{PIPESTATUS[@]}}"')
    return [int(code) for code in result.stdout.split()[-2:]]


def repository_in(home: Path) -> Repository:
    return Repository(Database(f"sqlite:///{home / 'trainq.db'}"))


def test_a_train_whose_reader_went_away_hands_its_run_back_with_a_checkpoint(
    tmp_path: Path,
) -> None:
    # Three lines: queued, starting, the first tenth of the steps; the next one finds no reader.
    codes = in_a_pipeline(
        tmp_path,
        "trainq train --steps 20000 --chunk-steps 100 --checkpoint-every 100 2>&1 | head -3",
    )
    assert codes[0] == OUTPUT_CLOSED
    run = repository_in(tmp_path).get_run(1)
    assert run.status is RunStatus.QUEUED, "the run must be handed back, not left running"
    assert run.lease_owner is None and run.attempt == 0
    assert 0 < run.steps_done < 20_000
    assert repository_in(tmp_path).list_checkpoints(1)[-1].step == run.steps_done


def test_a_train_whose_stdout_closed_at_once_says_how_to_resume_on_stderr(tmp_path: Path) -> None:
    result = in_bash(tmp_path, "trainq train --steps 50000 | tail -c 0")
    assert "continue it with `trainq resume 1`" in result.stderr
    assert repository_in(tmp_path).get_run(1).status is RunStatus.QUEUED


def test_a_run_whose_process_died_here_is_shown_with_the_command_that_resumes_it(
    tmp_path: Path,
) -> None:
    assert trainq_in(tmp_path, "status").returncode == 0  # creates the database
    repository = repository_in(tmp_path)
    run = repository.create_run(
        kind=JobKind.TRAIN, config={"steps": 1000}, seed=1, queue="train", max_attempts=3
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owner = lease_owner_name(socket.gethostname(), dead.pid, "embedded")
    claimed = repository.claim_run(
        run.id, owner=owner, worker_host=socket.gethostname(), lease_ttl_s=3600
    )
    assert claimed is not None and claimed.status is RunStatus.RUNNING
    advice = f"continue it with `trainq resume {run.id}`"

    listing = trainq_in(tmp_path, "runs", "list")
    assert "running*" in listing.stdout and advice in listing.stdout
    assert advice in trainq_in(tmp_path, "runs", "show", str(run.id)).stdout
    assert advice in trainq_in(tmp_path, "status").stdout
    report = json.loads(trainq_in(tmp_path, "status", "--json").stdout)
    assert report["database"]["runs_whose_process_is_gone"] == {str(run.id): dead.pid}


@pytest.mark.parametrize("command", ["metrics 1 --format csv", "runs list --format json"])
def test_a_listing_whose_reader_went_away_exits_141_without_a_word(
    tmp_path: Path, command: str
) -> None:
    assert trainq_in(tmp_path, "train", "--steps", "300").returncode == 0
    # `true` exits before trainq has started: its first write finds no reader. Typer alone
    # exited 1, silently: to a script, a failure.
    result = in_bash(tmp_path, f'trainq {command} | true; echo "${{PIPESTATUS[0]}}"')
    assert result.stdout.split() == [str(OUTPUT_CLOSED)]
    assert result.stderr == ""
