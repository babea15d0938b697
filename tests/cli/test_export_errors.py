"""``trainq export`` to a place it cannot write: a clear message, exit 73, and no file left behind.

A full disk used to give exit 70 (internal error) and leave ``run.partial.npz`` behind. The tests
use real small filesystems (tmpfs), so they need root; they are skipped where mounting is refused.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from storage import Database, Repository
from tests.cli.conftest import Trainq
from tests.storage.support import WEIGHTS, chunk, claim, execute_sql, new_run, sqlite_url

Mount = Callable[..., Path]


@pytest.fixture(scope="module")
def run_id(home: Path) -> int:
    """A run with one checkpoint at step 100 in the embedded database (no training needed)."""
    database = Database(sqlite_url(home / "trainq.db"))
    database.upgrade()
    repo = Repository(database)
    run = new_run(repo)
    claim(repo, run.id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=30, checkpoint=WEIGHTS)
    database.dispose(close=True)
    return run.id


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """Mount a tmpfs with the given options under ``tmp_path``; unmounted at teardown."""
    mounted: list[Path] = []

    def mount_tmpfs(name: str, options: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount_tmpfs
    for point in reversed(mounted):
        subprocess.run(["umount", str(point)], check=True)


def test_export_to_a_full_disk_exits_73_and_leaves_no_partial_file(
    trainq: Trainq, run_id: int, mount: Mount
) -> None:
    small = mount("small", "size=16k")  # the export is about 32 KiB
    out = small / "run.npz"
    result = trainq("export", str(run_id), "--out", str(out))
    assert result.returncode == 73, result.stderr
    assert f"cannot write {out}: no space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(small) == []


def test_export_to_a_read_only_directory_exits_73_and_says_why(
    trainq: Trainq, run_id: int, mount: Mount
) -> None:
    read_only = mount("read-only", "ro,size=64k")
    out = read_only / "run.npz"
    result = trainq("export", str(run_id), "--out", str(out))
    assert result.returncode == 73, result.stderr
    assert f"cannot write {out}: read-only file system" in result.stderr
    assert os.listdir(read_only) == []


def test_export_to_a_disk_with_room_writes_the_weights_and_nothing_else(
    trainq: Trainq, run_id: int, mount: Mount
) -> None:
    roomy = mount("roomy", "size=256k")
    out = roomy / "run.npz"
    result = trainq("export", str(run_id), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert os.listdir(roomy) == ["run.npz"]
    with np.load(out) as exported:
        assert np.array_equal(exported["W"], WEIGHTS["W"])
        assert np.array_equal(exported["b"], WEIGHTS["b"])


@pytest.fixture(scope="module")
def sweep_id(home: Path) -> int:
    """A sweep of two planned trials in the embedded database (none trained: enough to draw)."""
    from storage.sweep_records import PlannedTrial

    database = Database(sqlite_url(home / "trainq.db"))
    database.upgrade()
    spec = {"metric": {"name": "val_accuracy", "goal": "maximize"}, "seed": 3, "run_cap": 2}
    spec["parameters"] = {"lr": {"value": 0.1}}
    trial = PlannedTrial(params={"lr": 0.1}, config={"learning_rate": 0.1}, seed=3, queue="q")
    sweep = Repository(database).create_sweep(
        name="full-disk", spec=spec, trials=[trial, trial], max_concurrent=1, max_attempts=1
    )
    database.dispose(close=True)
    return sweep.id


@pytest.mark.parametrize("command", ["plot", "sweep plot"])
def test_a_plot_to_a_full_disk_exits_73_and_leaves_no_partial_file(
    trainq: Trainq, run_id: int, sweep_id: int, mount: Mount, command: str
) -> None:
    small = mount("small", "size=4k")  # every image is larger than one page
    out = small / "figure.png"
    subject = str(run_id if command == "plot" else sweep_id)
    result = trainq(*command.split(), subject, "--out", str(out))
    assert result.returncode == 73, result.stderr
    assert f"cannot write {out}: no space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(small) == []


@pytest.mark.parametrize("command", ["plot", "sweep plot"])
def test_a_plot_to_a_disk_with_room_writes_the_image_and_nothing_else(
    trainq: Trainq, run_id: int, sweep_id: int, mount: Mount, command: str
) -> None:
    roomy = mount("roomy", "size=1m")
    out = roomy / "figure.png"
    subject = str(run_id if command == "plot" else sweep_id)
    result = trainq(*command.split(), subject, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert os.listdir(roomy) == ["figure.png"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("edit", "code"),
    [("CAST(weights AS TEXT)", 0), ("CAST(substr(weights, 1, 1000) AS TEXT)", 65)],
    ids=["its-own-bytes", "cut"],
)
def test_a_checkpoint_stored_as_text_exports_by_its_checksum_never_exit_69(
    trainq: Trainq, home: Path, tmp_path: Path, edit: str, code: int
) -> None:
    database = Database(sqlite_url(home / "trainq.db"))
    repo = Repository(database)
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=30, checkpoint=WEIGHTS)
    execute_sql(database, f"UPDATE checkpoints SET weights = {edit} WHERE run_id = {run.id}")
    database.dispose(close=True)

    result = trainq("export", str(run.id), "--out", str(tmp_path / "run.npz"))

    assert result.returncode == code, result.stderr
    if code == 65:
        assert f"run {run.id}, checkpoint at step 100: weight blob checksum mismatch" in (
            result.stderr.replace("\n", " ")
        )
    assert "UTF-8" not in result.stderr and "Traceback" not in result.stderr
