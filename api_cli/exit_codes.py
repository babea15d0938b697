"""Named exit codes, and the one mapping from trainq's errors to them.

Scripts can tell a failed run from bad input or a broker that is down. The error classes (in
storage, worker and api_cli) know nothing of exit codes; this module is their one owner.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
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
    TEMPFAIL = 75  # not done yet: --timeout ran out, or an embedded run stopped early; resume it
    CONFIG = 78  # a TRAINQ_* variable is unusable
    INTERRUPTED = 130  # Ctrl-C
    OUTPUT_CLOSED = 141  # the reader of our output went away (`| head`); as a SIGPIPE would say


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for ``error``: that of its nearest class in :func:`exit_codes`."""
    codes = exit_codes()
    for cls in type(error).__mro__:
        code = codes.get(cls)
        if code is not None:
            return code
    return ExitCode.INTERNAL


@functools.cache
def exit_codes() -> Mapping[type[BaseException], ExitCode]:
    """Each error class's exit code; a subclass takes its nearest listed ancestor's.

    Built on first use: the error modules import the storage package, which ``trainq --help``
    must not pay for.
    """
    from api_cli.waiting import StillRunningError
    from storage import errors as storage_errors
    from worker import errors as worker_errors

    return {
        storage_errors.TrainqError: ExitCode.RUN_FAILED,
        storage_errors.ConfigurationError: ExitCode.CONFIG,
        storage_errors.OutputWriteError: ExitCode.CANT_CREATE,
        storage_errors.StorageError: ExitCode.UNAVAILABLE,
        storage_errors.DatabaseCorruptError: ExitCode.DATA_ERROR,
        storage_errors.NotFoundError: ExitCode.NOT_FOUND,
        storage_errors.StaleAttemptError: ExitCode.TEMPFAIL,
        storage_errors.InvalidStateError: ExitCode.INVALID_STATE,
        storage_errors.WeightsCorruptError: ExitCode.DATA_ERROR,
        storage_errors.InvalidValueError: ExitCode.DATA_ERROR,
        worker_errors.InvalidConfigError: ExitCode.USAGE,
        worker_errors.DeterministicJobError: ExitCode.RUN_FAILED,
        worker_errors.BrokerUnavailableError: ExitCode.UNAVAILABLE,
        StillRunningError: ExitCode.TEMPFAIL,
    }
