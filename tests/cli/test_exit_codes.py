"""Exit codes have one owner: a mapping in api_cli from error class to code; the error classes
themselves know nothing of exit codes."""

from __future__ import annotations

import pytest

import storage.errors
import worker.errors
from api_cli.exit_codes import ExitCode, exit_code_for
from api_cli.waiting import StillRunningError
from storage.errors import TrainqError


def every_error_class() -> list[type[TrainqError]]:
    found: list[type[TrainqError]] = []
    pending: list[type[TrainqError]] = [TrainqError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_no_error_class_carries_an_exit_code_of_its_own() -> None:
    assert [cls.__name__ for cls in every_error_class() if "exit_code" in vars(cls)] == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (worker.errors.InvalidConfigError("--lr"), ExitCode.USAGE),
        (storage.errors.RunNotFoundError("run 9"), ExitCode.NOT_FOUND),
        (storage.errors.DiskFullError("full"), ExitCode.UNAVAILABLE),
        (storage.errors.DatabaseCorruptError("bad"), ExitCode.DATA_ERROR),
        (storage.errors.WeightsChecksumError("bad"), ExitCode.DATA_ERROR),
        (storage.errors.ConfigurationError("TRAINQ_X"), ExitCode.CONFIG),
        (worker.errors.DivergenceError("nan"), ExitCode.RUN_FAILED),
        (StillRunningError("run 3"), ExitCode.TEMPFAIL),
        (RuntimeError("a bug"), ExitCode.INTERNAL),
    ],
)
def test_each_error_maps_to_its_nearest_listed_ancestors_code(
    error: BaseException, code: ExitCode
) -> None:
    assert exit_code_for(error) is code
