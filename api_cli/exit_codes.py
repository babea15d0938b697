"""Named exit codes: scripts can tell a failed run from bad input or a broker that is down."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What ``trainq``'s exit status means."""

    OK = 0
    RUN_FAILED = 1  # the job ran and FAILED (its error is printed and stored)
    USAGE = 2  # bad option or config value; nothing was queued
    INVALID_STATE = 3  # e.g. cancelling a run that already finished
    NOT_FOUND = 4  # no such run, checkpoint or evaluation
    RUN_CANCELLED = 5  # the job was cancelled
    DATA_ERROR = 65  # corrupt weights or dataset files
    UNAVAILABLE = 69  # database or broker unreachable
    INTERNAL = 70  # a bug: rerun with --debug and report it
    CANT_CREATE = 73  # an output file could not be written (disk full, read-only, denied)
    TEMPFAIL = 75  # not done yet: --timeout ran out while the run goes on; try again later
    CONFIG = 78  # a TRAINQ_* variable is unusable
    INTERRUPTED = 130  # Ctrl-C
