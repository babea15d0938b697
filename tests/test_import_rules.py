"""The import rules of docs/architecture.md, enforced by the build rather than by memory.

Layers point one way (api_cli -> worker, storage; worker -> storage; storage -> nothing of ours),
and each third-party framework belongs to one layer: SQLAlchemy and Alembic to storage, Celery,
billiard, kombu and redis-py to the worker's Celery shell (``worker/cluster/``), TensorFlow to
worker (only where a job trains or evaluates), Typer and Rich to the CLI. Inside worker, the job
itself (everything outside ``worker/cluster/``) never imports the shell, so the job code runs
the same with or without Celery installed. Every import statement of every module is read from its
syntax tree, including imports inside functions, so a lazy import cannot slip past.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api_cli", "worker", "storage")

#: Which of our packages each package may import.
ALLOWED_INTERNAL: dict[str, set[str]] = {
    "api_cli": {"api_cli", "worker", "storage"},
    "worker": {"worker", "storage"},
    "storage": {"storage"},
}
#: Third-party frameworks and the one package allowed to import each.
FRAMEWORK_OWNER: dict[str, str] = {
    "sqlalchemy": "storage",
    "alembic": "storage",
    "lark": "storage",
    "celery": "worker",
    "kombu": "worker",
    "billiard": "worker",
    "redis": "worker",
    "tensorflow": "worker",
    "keras": "worker",
    "typer": "api_cli",
    "rich": "api_cli",
    "prometheus_client": "api_cli",
}
#: The only modules that may import TensorFlow (they run in the process that trains); worker/data.py
#: only for Keras's download of the data set, its last resort, reached from a job.
TENSORFLOW_MODULES = (
    "worker/training/",
    "worker/evaluation.py",
    "worker/tensorflow_import.py",
    "worker/data.py",
)


def imported_top_level_names(path: Path) -> set[str]:
    """The top-level package of every absolute import in ``path``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


#: The worker's Celery shell; the frameworks only it may import, and which nothing else in worker/
#: may import either (the job code, sweeps' rules, data and training).
CLUSTER_WING = "worker/cluster/"
CLUSTER_ONLY = {"celery", "kombu", "billiard", "redis"}


def imported_module_names(path: Path) -> set[str]:
    """Every absolute import in ``path`` by full dotted name (``from a.b import c``: a.b, a.b.c)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules_of(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts)


def violations(package: str) -> list[str]:
    found: list[str] = []
    for path in modules_of(package):
        relative = path.relative_to(ROOT).as_posix()
        for name in imported_top_level_names(path):
            if name in PACKAGES and name not in ALLOWED_INTERNAL[package]:
                found.append(f"{relative} imports {name}: {package} may not depend on it")
            owner = FRAMEWORK_OWNER.get(name)
            if owner is not None and owner != package:
                found.append(f"{relative} imports {name}, which only {owner}/ may import")
            if name in {"tensorflow", "keras"} and not relative.startswith(TENSORFLOW_MODULES):
                found.append(f"{relative} imports {name} outside the training/evaluation modules")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_layers_and_frameworks_it_owns(package: str) -> None:
    assert violations(package) == []


def test_the_rule_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text(
        "def f() -> None:\n    import tensorflow as tf\n    from celery import Celery\n"
    )
    assert imported_top_level_names(module) == {"tensorflow", "celery"}


def test_the_job_code_imports_nothing_of_celery_nor_the_celery_shell() -> None:
    found: list[str] = []
    for path in modules_of("worker"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(CLUSTER_WING):
            continue
        for name in imported_module_names(path):
            if name.split(".")[0] in CLUSTER_ONLY:
                found.append(f"{relative} imports {name}: only {CLUSTER_WING} may")
            if name == "worker.cluster" or name.startswith("worker.cluster."):
                found.append(f"{relative} imports {name}: the job code never calls the shell")
    assert found == []


def test_the_job_code_runs_without_loading_celery() -> None:
    # An embedded sweep trial: claim, train, finish; afterwards no Celery, kombu, billiard or
    # redis-py module is loaded in the process (the rule above, checked at run time as well).
    import subprocess
    import sys

    code = (
        "import sys, tempfile\n"
        "from storage import Database, Repository, Settings\n"
        "from worker.jobs import JobContext\n"
        "from worker.sweeps import submit_sweep\n"
        "from worker.sweep_runner import run_sweep_here\n"
        "home = tempfile.mkdtemp()\n"
        "settings = Settings.from_env({'TRAINQ_HOME': home})\n"
        "database = Database(settings.database_url)\n"
        "database.ensure_schema(auto_upgrade=True)\n"
        "repository = Repository(database)\n"
        "sweep = submit_sweep(repository, {'name': 'x', 'method': 'grid', 'seed': 1, "
        "'val_size': 1000, 'parameters': {'steps': {'values': [20, 40]}}}, max_attempts=1)\n"
        "context = JobContext.for_this_process(repository, settings, 'test')\n"
        "print(run_sweep_here(context, sweep.id).status)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'celery', 'kombu', 'billiard', "
        "'redis'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
