"""A damaged, unreadable or unwritable persistent XLA cache never fails a run nor spends an attempt.

Each job runs in a fresh process (TensorFlow reads its XLA flags once, at import) through
``worker.jobs.execute_job`` on a real SQLite repository, as a worker or ``trainq train`` runs it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from worker.training import xla_choice
from worker.training.compile_cache import is_cache_error, off_marker

ROOT = Path(__file__).resolve().parents[2]

#: Runs (creating it first when argv[2] says so) run 1 of the SQLite database under the home
#: argv[1] in this fresh process; argv[3], when given, is a folder to fill up once the compile
#: cache is on (the disk filling up while the job starts). Prints the run's status, attempt and
#: error and its newest checkpoint's weights as hex.
CHILD = """
import json, os, sys
from pathlib import Path
home, create, fill = Path(sys.argv[1]), sys.argv[2] == "create", sys.argv[3:]
from storage import Database, JobKind, Repository, Settings
from worker.config import TrainConfig
from worker.jobs import JobContext, execute_job
from worker.training.xla_choice import use_compile_cache
database = Database(f"sqlite:///{home / 'trainq.db'}")
database.upgrade()
repository = Repository(database)
if create:
    config = TrainConfig(steps=200, chunk_steps=100, seed=5, xla=True)
    repository.create_run(
        kind=JobKind.TRAIN, config=config.model_dump(mode="json"), seed=5, queue="train",
        max_attempts=1,
    )
use_compile_cache(home)
for n in range(10_000 if fill else 0):
    try:
        (Path(fill[0]) / f"filler{n}").touch()
    except OSError:
        break
settings = Settings(home_dir=home, database_url="unused", broker_url=None, data_dir=None)
execute_job(JobContext.for_this_process(repository, settings, "test"), 1)
run = repository.get_run(1)
latest = repository.latest_checkpoint(1)
arrays = {} if latest is None else latest.arrays
weights = (arrays["W"].tobytes() + arrays["b"].tobytes()).hex() if arrays else ""
print(json.dumps({"status": run.status.value, "attempt": run.attempt, "error": run.error,
                  "weights": weights}))
"""


@dataclass(frozen=True)
class Job:
    """What one job process left: the run's state and weights, and what it logged."""

    status: str
    attempt: int
    error: str | None
    weights: str
    stderr: str

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "XLA compile cache" in line]


def run_job(home: Path, *, create: bool = True, fill: Path | None = None) -> Job:
    """Run the test's run in a fresh process whose home is ``home``."""
    argv = [str(home), "create" if create else "resume", *([str(fill)] if fill else [])]
    return run_child(CHILD, argv)


def run_child(script: str, argv: list[str]) -> Job:
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]  # the job let an error escape
    return Job(**json.loads(done.stdout.strip().splitlines()[-1]), stderr=done.stderr)


def cache_dir(home: Path) -> Path:
    return xla_choice.host_directory(home) / "compiled"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Job, Path]:
    """A run compiled from nothing, and the home whose cache now holds its chunk."""
    home = tmp_path_factory.mktemp("clean")
    job = run_job(home)
    assert job.status == "succeeded" and job.weights
    assert len(list(cache_dir(home).iterdir())) == 1
    return job, home


@pytest.fixture
def cached_home(tmp_path: Path, clean: tuple[Job, Path]) -> Path:
    """A fresh home whose cache holds the clean run's compiled chunk (same host key)."""
    shutil.copytree(cache_dir(clean[1]), cache_dir(tmp_path))
    return tmp_path


def assert_like_a_clean_run(job: Job, clean: Job) -> None:
    assert job.status == "succeeded", job.stderr
    assert job.weights == clean.weights  # bit-identical: the cache holds code, never state
    assert job.attempt == 1  # its one attempt, not spent on the cache
    assert len(job.warnings) == 1, job.stderr
    assert "Traceback" not in job.stderr


def damage(home: Path, write: Callable[[Path], None]) -> None:
    (entry,) = cache_dir(home).iterdir()
    write(entry)


def test_a_truncated_entry_is_set_aside_and_the_chunk_compiled_again(
    cached_home: Path, clean: tuple[Job, Path]
) -> None:
    damage(cached_home, lambda entry: entry.write_bytes(entry.read_bytes()[:100]))
    job = run_job(cached_home)
    assert_like_a_clean_run(job, clean[0])
    assert "OutOfRangeError" in job.warnings[0]
    (aside,) = cache_dir(cached_home).parent.glob("compiled.damaged-*")
    assert [entry.stat().st_size for entry in aside.iterdir()] == [100]
    assert len(list(cache_dir(cached_home).iterdir())) == 1  # a fresh entry written


def test_an_entry_of_random_bytes_is_set_aside_and_the_chunk_compiled_again(
    cached_home: Path, clean: tuple[Job, Path]
) -> None:
    damage(cached_home, lambda entry: entry.write_bytes(bytes(range(256)) * 16))
    job = run_job(cached_home)
    assert_like_a_clean_run(job, clean[0])
    assert "DataLossError" in job.warnings[0]


def test_a_file_where_the_cache_directory_should_be_is_set_aside(
    tmp_path: Path, clean: tuple[Job, Path]
) -> None:
    # Made between the process's check and the compile (another process, a user's mistake).
    job = run_job_with_file_at_cache(tmp_path)
    assert_like_a_clean_run(job, clean[0])
    assert "FailedPreconditionError" in job.warnings[0]
    (aside,) = cache_dir(tmp_path).parent.glob("compiled.damaged-*")
    assert aside.read_text() == "not a directory\n"


def run_job_with_file_at_cache(home: Path) -> Job:
    """Run the job with a file put where the cache directory is once the cache is on."""
    directory = str(cache_dir(home))
    script = CHILD.replace(
        "settings = Settings(",
        f"import shutil; shutil.rmtree({directory!r}); "
        f"Path({directory!r}).write_text('not a directory\\n')\nsettings = Settings(",
    )
    return run_child(script, [str(home), "create"])


Mount = Callable[[Path, str], Path]


@pytest.fixture
def mount() -> Iterator[Mount]:
    """Mount a tmpfs with the given options at a path; unmounted at teardown (needs root)."""
    mounted: list[Path] = []

    def mount_tmpfs(point: Path, options: str) -> Path:
        point.mkdir(parents=True, exist_ok=True)
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


def test_a_cache_on_a_read_only_disk_is_left_off_and_the_run_trains(
    tmp_path: Path, clean: tuple[Job, Path], mount: Mount
) -> None:
    mount(cache_dir(tmp_path), "ro,size=1g")  # root writes through any mode, not a ro mount
    job = run_job(tmp_path)
    assert_like_a_clean_run(job, clean[0])
    assert "cannot be written" in job.warnings[0]


def test_a_disk_that_fills_up_hands_the_run_back_and_the_next_process_trains_without_the_cache(
    tmp_path: Path, clean: tuple[Job, Path], mount: Mount
) -> None:
    # Room when the process checks (1 GiB, inodes), none when XLA writes: every inode taken.
    full = mount(cache_dir(tmp_path), "size=1g,nr_inodes=128")
    first = run_job(tmp_path, fill=full)
    assert (first.status, first.attempt, first.error) == ("queued", 0, None)  # not spent
    assert len(first.warnings) == 1 and "Traceback" not in first.stderr, first.stderr
    assert "ResourceExhaustedError" in first.warnings[0]
    assert off_marker(cache_dir(tmp_path)).exists()
    second = run_job(tmp_path, create=False)
    assert second.status == "succeeded" and second.weights == clean[0].weights
    assert second.attempt == 1 and second.warnings == [] and "Traceback" not in second.stderr


def test_an_error_of_the_same_type_without_the_cache_in_it_is_never_the_caches(
    tmp_path: Path,
) -> None:
    from worker.tensorflow_import import tf

    directory = cache_dir(tmp_path)
    assert not is_cache_error(
        tf.errors.ResourceExhaustedError(None, None, "OOM on GPU:0"), directory
    )
    assert not is_cache_error(tf.errors.DataLossError(None, None, "Checksum mismatch"), directory)
    assert not is_cache_error(ValueError(f"{directory} is not a directory"), directory)
    assert is_cache_error(
        tf.errors.FailedPreconditionError(None, None, f"{directory} is not a directory"), directory
    )
