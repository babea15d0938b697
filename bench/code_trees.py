"""Two versions of trainq's code side by side, so a start-up figure is a ratio measured in one run.

A shared machine's speed drifts by tens of percent within minutes, so a figure taken today
cannot be compared with one taken on another machine or another day. Instead the baseline commit
is checked out into a temporary ``git worktree`` and each of its processes runs with that tree as
its working directory and first ``PYTHONPATH`` entry, in the same interpreter (and so the same
installed libraries) as the current code: only trainq's own code differs.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.cli.conftest import embedded_env

#: The root of the checkout this bench runs from (the current code).
CURRENT_ROOT = Path(__file__).resolve().parent.parent

#: Writes ``sys.argv[1]`` SUCCEEDED runs through the repository of whichever tree it runs in, so
#: each tree's home has that tree's own schema (the baseline's is older). Only calls both trees
#: have: create, claim, one metric chunk, finish with a summary both versions read.
SEED_RUNS = """
import sys
import numpy as np
from storage import Database, Repository, Settings
from storage.records import JobKind, MetricChunk, RunStatus
from worker.config import TrainConfig

database = Database(Settings.from_env().database_url)
database.ensure_schema(auto_upgrade=True)
repository = Repository(database)
config = TrainConfig.model_validate(
    {"steps": 1000, "chunk_steps": 1000, "checkpoint_every_steps": 1000, "seed": 5}
).model_dump(mode="json")
summary = {
    "steps_done": 1000, "steps_run": 1000, "completed": True, "device": "CPU:0", "wall_s": 2.0,
    "wall_steps_per_s": 500.0, "training_steps_per_s": 2000.0, "steps_per_s": 500.0,
    "final_loss": 0.75, "final_accuracy": 0.5, "final_window_steps": 500,
}
for _ in range(int(sys.argv[1])):
    run = repository.create_run(
        kind=JobKind.TRAIN, config=config, seed=5, queue="train", max_attempts=3
    )
    claimed = repository.claim_run(run.id, owner="bench:1:a", worker_host="bench", lease_ttl_s=600)
    chunk = MetricChunk(1, np.full(1000, 0.75, np.float32), np.full(1000, 0.5, np.float32))
    repository.record_chunk(run.id, claimed.attempt, chunk, lease_ttl_s=600)
    repository.finish_run(
        run.id, claimed.attempt, RunStatus.SUCCEEDED, summary=summary, device="CPU:0"
    )
database.dispose()
"""


@dataclass(frozen=True)
class CodeTree:
    """One version of trainq's code, run as ``python -m api_cli`` from its own directory."""

    label: str
    root: Path

    def env(self, home: Path) -> dict[str, str]:
        """An embedded environment on ``home`` that imports this tree's code first.

        Bytecode caching is left on even where the shell turns it off: an installed trainq
        starts from cached bytecode, and compiling every module at each start would weigh on
        whichever tree imports more of its own code.
        """
        env = {**embedded_env(home), "PYTHONPATH": str(self.root)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def trainq(self, *args: str) -> list[str]:
        """The argv of ``trainq ARGS...`` (run it with ``cwd=self.root``)."""
        return [sys.executable, "-m", "api_cli", *args]

    def check_imports_itself(self) -> None:
        """Fail unless ``api_cli``, ``storage`` and ``worker`` all import from this tree (an
        editable install elsewhere must not win over ``PYTHONPATH``)."""
        code = (
            "import api_cli as a, storage as s, worker as w\nfor m in (a, s, w): print(m.__file__)"
        )
        with tempfile.TemporaryDirectory(prefix="trainq-check-") as home:
            printed = subprocess.run(
                [sys.executable, "-c", code],
                env=self.env(Path(home)),
                cwd=self.root,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
        stray = [path for path in printed if not Path(path).resolve().is_relative_to(self.root)]
        if stray:
            raise SystemExit(f"{self.label} tree {self.root} imports {stray}: not its own code")

    def seed_home(self, home: Path, runs: int, database_url: str | None = None) -> None:
        """Write ``runs`` finished runs into ``home`` (or the database at ``database_url``)
        with this tree's own code and schema."""
        env = self.env(home)
        if database_url is not None:
            env["TRAINQ_DATABASE_URL"] = database_url
        subprocess.run(
            [sys.executable, "-c", SEED_RUNS, str(runs)],
            env=env,
            cwd=self.root,
            check=True,
            stdout=subprocess.DEVNULL,
        )


@contextmanager
def baseline_tree(commit: str) -> Iterator[CodeTree]:
    """``commit`` checked out (detached) in a temporary worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="trainq-baseline-") as directory:
        root = Path(directory) / "tree"
        git = ["git", "-C", str(CURRENT_ROOT)]
        subprocess.run(
            [*git, "worktree", "add", "--detach", str(root), commit],
            check=True,
            capture_output=True,
        )
        try:
            tree = CodeTree(f"baseline {commit}", root.resolve())
            tree.check_imports_itself()
            yield tree
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(root)], check=False)
