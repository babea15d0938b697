"""Where a job runs is the swap of one object, chosen once from the settings."""

from __future__ import annotations

import ast
from pathlib import Path

from storage import Settings
from worker.cluster.publisher import Dispatcher, dispatcher_for
from worker.inprocess import InProcessDispatcher

ROOT = Path(__file__).resolve().parents[2]
DISPATCHING_COMMANDS = ("train.py", "resume.py", "evaluate.py")


def test_no_broker_means_jobs_run_in_this_process(tmp_path: Path) -> None:
    dispatcher = dispatcher_for(Settings.from_env({"TRAINQ_HOME": str(tmp_path)}))
    assert isinstance(dispatcher, InProcessDispatcher) and dispatcher.in_this_process


def test_a_broker_means_jobs_are_published_for_workers(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"TRAINQ_HOME": str(tmp_path), "TRAINQ_BROKER_URL": "redis://127.0.0.1:6379/0"}
    )
    dispatcher = dispatcher_for(settings)
    assert isinstance(dispatcher, Dispatcher) and not dispatcher.in_this_process


def test_the_commands_that_dispatch_never_ask_whether_they_are_embedded() -> None:
    for name in DISPATCHING_COMMANDS:
        tree = ast.parse((ROOT / "api_cli" / "commands" / name).read_text())
        asked = [
            node.lineno
            for node in ast.walk(tree)
            if (isinstance(node, ast.Attribute) and node.attr in ("embedded", "in_this_process"))
            or (isinstance(node, ast.Name) and node.id == "embedded")
        ]
        assert not asked, f"api_cli/commands/{name} asks about the mode on lines {asked}"


def test_a_run_for_the_workers_compiles_with_xla_and_one_trained_here_short_does_not() -> None:
    from trainq import Client

    from worker.config import TrainConfig

    broker = Settings.from_env(
        {"TRAINQ_BROKER_URL": "redis://127.0.0.1:6379/15", "TRAINQ_HOME": "/nonexistent"}
    )
    with Client(broker) as client:  # nothing is published: the choice needs no broker
        assert client.ready_for_one_run(TrainConfig(steps=500)).xla is True


def test_one_publisher_serves_a_whole_process_and_a_forked_child_builds_its_own(
    tmp_path: Path,
) -> None:
    import os

    from worker.cluster.publisher import publisher_for

    settings = Settings.from_env(
        {"TRAINQ_HOME": str(tmp_path), "TRAINQ_BROKER_URL": "redis://127.0.0.1:6379/0"}
    )
    first = publisher_for(settings)
    assert publisher_for(settings) is first
    assert dispatcher_for(settings) is first
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, b"1" if publisher_for(settings) is not first else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)
    os.close(write)


def test_no_module_builds_a_publisher_of_its_own() -> None:
    # Every caller shares the process's publisher (worker.cluster.publisher.publisher_for).
    builders = []
    for package in ("api_cli", "worker", "storage"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "publisher.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "Dispatcher"
                ):
                    builders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert builders == []
