"""The ``trainq`` console script: ``trainq train`` forks its trainer process before anything else.

An embedded ``trainq train`` (or ``trainq resume``) trains its run's steps in a second process,
which imports TensorFlow while this one imports Typer, the commands and SQLAlchemy and stores
the run (``worker.training.trainer_process``). The fork comes first, before those imports, so
that TensorFlow's import starts at once. Every other command goes straight to ``api_cli.main``.
"""

from __future__ import annotations

import sys


def run() -> None:
    """Console-script entry point (``trainq``)."""
    if trains_here(sys.argv[1:]):
        from worker.training import trainer_process

        trainer_process.fork_early()
    from api_cli.main import run as run_cli

    run_cli()


#: The commands whose process trains a run itself when no broker is set.
TRAINING_COMMANDS = frozenset({"train", "resume"})


def trains_here(args: list[str]) -> bool:
    """Whether ``args`` ask for ``trainq [--debug] train|resume ...`` rather than its help (with
    a broker set, the trainer process sees it and exits at once)."""
    command = next((arg for arg in args if arg != "--debug"), None)
    return command in TRAINING_COMMANDS and not {"--help", "-h"} & set(args)
