"""The embedded SQLite file under faults: full disk, read-only home, damage, `trainq db check`.

The full and read-only file systems are real: a small tmpfs mounted as TRAINQ_HOME (this needs
root, as in CI; elsewhere these tests are skipped, and in CI a failed mount is an error).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from storage import Database, JobKind, MetricChunk, Repository, RunStatus
from tests.cli.conftest import trainq_in

DATA_ERROR = 65
UNAVAILABLE = 69
WEIGHTS = {"W": np.ones((784, 10), np.float32), "b": np.arange(10, dtype=np.float32)}


def one_line(text: str) -> str:
    """Rich wraps long lines on stderr; compare messages with their whitespace collapsed."""
    return " ".join(text.split())


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def small_home(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted at the end."""
    home = tmp_path / "home"
    home.mkdir()
    try:
        mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", str(home))
    except (OSError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot mount a tmpfs here (needs root): {error}")
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False, capture_output=True)


def store_finished_runs(home: Path, runs: int = 1) -> None:
    """Finished runs of 1,000 steps (10 chunks, a checkpoint per chunk), without TensorFlow."""
    database = Database(f"sqlite:///{home / 'trainq.db'}")
    database.upgrade()
    repository = Repository(database)
    for _ in range(runs):
        run = repository.create_run(
            kind=JobKind.TRAIN, config={"steps": 1000}, seed=1, queue="train", max_attempts=3
        )
        claimed = repository.claim_run(run.id, owner="t", worker_host="h", lease_ttl_s=60)
        assert claimed is not None
        for first in range(1, 1001, 100):
            losses = np.linspace(2, 1, 100, dtype=np.float32)
            repository.record_chunk(
                run.id,
                claimed.attempt,
                MetricChunk(first, losses, np.full(100, 0.5, np.float32)),
                lease_ttl_s=60,
                checkpoint={"W": WEIGHTS["W"] * first, "b": WEIGHTS["b"]},
            )
        repository.finish_run(run.id, claimed.attempt, RunStatus.SUCCEEDED, final_weights=WEIGHTS)
    # Closing the last connection checkpoints the WAL into the file and removes it.
    database.dispose(close=True)


def test_a_full_disk_leaves_the_run_resumable_and_resume_finishes_it_once_space_is_freed(
    small_home: Path,
) -> None:
    assert trainq_in(small_home, "runs", "list").returncode == 0  # creates the database
    free_bytes = os.statvfs(small_home).f_bavail * os.statvfs(small_home).f_frsize
    filler = small_home / "filler"
    filler.write_bytes(b"\0" * (free_bytes - 256 * 1024))
    options = ["--steps", "20000", "--chunk-steps", "500", "--checkpoint-every", "500"]

    full = trainq_in(small_home, "train", *options, "--seed", "4")

    assert full.returncode == UNAVAILABLE, full.stderr
    message = one_line(full.stderr)
    assert f"no space left on device at TRAINQ_HOME={small_home}" in message
    assert "continue with `trainq resume 1`" in message
    listed = json.loads(trainq_in(small_home, "runs", "list", "--format", "json").stdout)
    assert listed[0]["status"] in ("queued", "running")  # not failed

    filler.unlink()
    resumed = trainq_in(small_home, "resume", "1", "--json")

    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    metrics = trainq_in(small_home, "metrics", "1", "--format", "csv").stdout.splitlines()
    assert [int(line.split(",")[0]) for line in metrics[1:]] == list(range(1, 20_001))


@pytest.mark.parametrize("wal_left_behind", [False, True], ids=["clean", "wal-left-behind"])
def test_commands_that_only_read_work_on_a_read_only_home(
    small_home: Path, tmp_path: Path, wal_left_behind: bool
) -> None:
    store_finished_runs(small_home)
    if wal_left_behind:  # a process died with commits still in the -wal file
        code = (
            "import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('PRAGMA wal_autocheckpoint = 0'); "
            "c.execute(\"UPDATE runs SET name = 'from-the-wal'\"); c.commit(); os._exit(0)"
        )
        subprocess.run([sys.executable, "-c", code, str(small_home / "trainq.db")], check=True)
    mount("-o", "remount,ro", str(small_home))

    listed = trainq_in(small_home, "runs", "list", "--format", "json")
    metrics = trainq_in(small_home, "metrics", "1", "--format", "csv")
    exported = trainq_in(small_home, "export", "1", "--out", str(tmp_path / "w.npz"))
    checked = trainq_in(small_home, "db", "check")
    written = trainq_in(small_home, "train", "--steps", "10")

    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["name"] == ("from-the-wal" if wal_left_behind else None)
    assert metrics.returncode == 0, metrics.stderr
    assert len(metrics.stdout.splitlines()) == 1001
    assert exported.returncode == 0, exported.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "w.npz")["b"], WEIGHTS["b"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert written.returncode == UNAVAILABLE
    assert "read-only" in written.stderr and "TRAINQ_HOME" in written.stderr
    assert "Traceback" not in written.stderr


def test_a_file_that_is_not_a_database_is_corrupt_data_not_an_outage(tmp_path: Path) -> None:
    (tmp_path / "trainq.db").write_bytes(random.Random(1).randbytes(8192))

    listed = trainq_in(tmp_path, "runs", "list")
    checked = trainq_in(tmp_path, "db", "check", "--format", "json")

    assert listed.returncode == DATA_ERROR, listed.stderr
    assert "file is not a database" in listed.stderr
    assert "trainq db check" in one_line(listed.stderr)
    assert checked.returncode == DATA_ERROR
    assert json.loads(checked.stdout)["healthy"] is False


def test_an_empty_file_is_refused_rather_than_silently_made_a_new_database(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "trainq.db"
    empty.touch()
    # Older than the grace a just-created file gets (another process may be writing its header).
    an_hour_ago = time.time() - 3600
    os.utime(empty, (an_hour_ago, an_hour_ago))

    listed = trainq_in(tmp_path, "runs", "list")

    assert listed.returncode == DATA_ERROR
    assert "is empty (0 bytes)" in one_line(listed.stderr)
    assert (tmp_path / "trainq.db").stat().st_size == 0


def test_db_check_finds_random_bytes_written_into_the_middle_of_the_file(tmp_path: Path) -> None:
    store_finished_runs(tmp_path, runs=4)
    healthy = trainq_in(tmp_path, "db", "check", "--format", "json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    report = json.loads(healthy.stdout)
    assert report["healthy"] and report["file"] == "ok"
    assert report["weights_checked"] == 40 and report["metric_chunks_checked"] == 40

    path = tmp_path / "trainq.db"
    with path.open("r+b") as file:
        file.seek(path.stat().st_size // 2)
        file.write(random.Random(2).randbytes(8192))
    damaged = trainq_in(tmp_path, "db", "check")

    assert damaged.returncode == DATA_ERROR, damaged.stdout + damaged.stderr
    assert "problems" in damaged.stdout
    assert "Traceback" not in damaged.stderr


def test_db_check_on_a_sound_database_says_so_and_exits_0(tmp_path: Path) -> None:
    store_finished_runs(tmp_path)

    checked = trainq_in(tmp_path, "db", "check")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no problems found" in checked.stdout
