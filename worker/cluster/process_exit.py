"""Ending a process without the interpreter's teardown once TensorFlow or Celery is loaded.

After TensorFlow has been imported, the interpreter's finalization (freeing thousands of modules,
then TensorFlow's C++ static destructors) takes about a second on 2 shared cores: a sixth of an
embedded ``trainq train`` of the seed's job, spent after the result is printed. A stopped
``trainq worker``'s main process (Celery, Kombu and TensorFlow's preloaded dependencies) spent
~0.7 s in the same teardown after its pool had joined, and whoever waits for the worker to exit
(``docker stop``, a supervisor restarting it) waits for that too. None of it is trainq's: the
work was committed, and the exit handlers (logging's flush among them) still run here. Only once
no other non-daemon thread is alive, so no job is cut short.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

#: Modules whose presence makes the interpreter's teardown worth skipping.
HEAVY_MODULES = frozenset({"tensorflow", "celery"})


def exit_without_teardown(code: int) -> None:
    """Run the exit handlers, close the database connections, flush stdout and stderr, and end
    the process with ``code``; return (do nothing) when neither TensorFlow nor Celery was
    imported nor a trainer process forked, or another non-daemon thread is still alive, and let
    the interpreter exit as usual."""
    if not HEAVY_MODULES & sys.modules.keys() and not _trained_elsewhere():
        return
    others = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon and thread.is_alive()
    ]
    if others:
        return
    atexit._run_exitfuncs()
    from storage import dispose_engines

    dispose_engines(close=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def _trained_elsewhere() -> bool:
    """Whether this process forked a trainer process (``worker.training.trainer_process``): the
    embedded ``trainq train``, whose own teardown (SQLAlchemy, NumPy, the CLI) costs ~0.2 s."""
    trainer_process = sys.modules.get("worker.training.trainer_process")
    return trainer_process is not None and trainer_process.started() is not None
