"""Bad numbers and strings are bad input (exit 2, naming the option) on SQLite and PostgreSQL.

They used to be an internal error (exit 70: ``runs show 99999999999999999999999``, ``metrics 1
--every 10^20``) or an outage (exit 69 on PostgreSQL: a 201-character ``--name``, ``--max-attempts
10^12``) — while SQLite stored a 5,000-character name. Nothing is stored in any case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import embedded_env
from tests.services import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_postgres,
)

BIG = "99999999999999999999999"

#: (arguments, the option the error must name)
BAD_INPUT = [
    (("runs", "show", BIG), "RUN_ID"),
    (("runs", "show", "0"), "RUN_ID"),
    (("runs", "list", "--limit", BIG), "--limit"),
    (("runs", "list", "--name", "n" * 201), "--name"),
    (("metrics", "1", "--every", "100000000000000000000"), "--every"),
    (("metrics", BIG), "RUN_ID"),
    (("metrics", "1", "--first-step", BIG), "--first-step"),
    (("metrics", "1", "--last-step", BIG), "--last-step"),
    (("cancel", "1", BIG), "RUN_IDS"),
    (("resume", BIG), "RUN_ID"),
    (("eval", BIG), "RUN_ID"),
    (("eval", "1", "--checkpoint", "99999999999999999999"), "--checkpoint"),
    (("eval", "1", "--checkpoint", "²"), "--checkpoint"),
    (("eval", "1", "--checkpoint", "9" * 5000), "--checkpoint"),
    (("export", BIG, "--out", "run.npz"), "RUN_ID"),
    (("export", "1", "--out", "run.npz", "--checkpoint", BIG), "--checkpoint"),
    (("predict", BIG), "RUN_ID"),
    (("predict", "1", "--seed", str(2**31)), "--seed"),
    (("predict", "1", "--checkpoint", BIG), "--checkpoint"),
    (("train", "--name", "n" * 201), "--name"),
    (("train", "--name", "n" * 5000), "--name"),
    (("train", "--max-attempts", "1000000000000"), "--max-attempts"),
    (("train", "--max-attempts", "0"), "--max-attempts"),
    (("train", "--seed", str(2**31)), "--seed"),
    (("train", "--seed", str(2**63)), "--seed"),
    (("train", "--steps", BIG), "--steps"),
    (("train", "--batch-size", BIG), "--batch-size"),
    (("train", "--checkpoint-every", BIG), "--checkpoint-every"),
    (("train", "--chunk-steps", BIG), "--chunk-steps"),
    (("train", "--tag", "k=" + "v" * 257), "--tag"),
    (("train", "--tag", "k" * 65 + "=v"), "--tag"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """An embedded `trainq` environment on a fresh SQLite file or PostgreSQL database."""
    env = embedded_env(tmp_path_factory.mktemp("limits-home"))
    env["COLUMNS"] = "400"  # Click's error box must not wrap an option name
    if request.param == "sqlite":
        yield env
        return
    require_postgres()
    name = f"trainq_test_cli_limits_{os.getpid()}"
    create_postgres_database(name)
    env["TRAINQ_DATABASE_URL"] = postgres_url(name)
    try:
        yield env
    finally:
        drop_postgres_database(name)


def trainq(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(env["TRAINQ_HOME"]),
    )


@pytest.mark.parametrize(("args", "option"), BAD_INPUT, ids=lambda value: str(value)[:60])
def test_an_out_of_range_option_is_bad_input_naming_the_option(
    backend_env: dict[str, str], args: tuple[str, ...], option: str
) -> None:
    result = trainq(backend_env, *args)
    assert result.returncode == 2, result.stderr
    assert option.lower() in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_nothing_was_stored_by_the_refused_commands(backend_env: dict[str, str]) -> None:
    result = trainq(backend_env, "runs", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("TRAINQ_LEASE_TTL_S", "1e-9", "from 1 to 3600"),
        ("TRAINQ_RECONCILE_EVERY_S", "1e-9", "from 0.5 to 3600"),
        ("TRAINQ_MAX_ATTEMPTS", "0.5", "whole number from 1 to 100"),
    ],
)
@pytest.mark.parametrize("command", [("status",), ("runs", "list"), ("worker",)], ids=" ".join)
def test_a_setting_outside_its_range_stops_the_command_at_start_with_exit_78(
    tmp_path: Path, variable: str, value: str, accepted: str, command: tuple[str, ...]
) -> None:
    env = embedded_env(tmp_path) | {"TRAINQ_BROKER_URL": "redis://127.0.0.1:1/0", variable: value}
    result = trainq(env, *command)
    assert result.returncode == 78, result.stderr
    assert f"{variable}={value!r}" in result.stderr and accepted in result.stderr


def test_a_data_dir_setting_that_names_no_directory_stops_train_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    env = {**embedded_env(tmp_path), "TRAINQ_DATA_DIR": str(tmp_path / "nonexistent")}
    result = subprocess.run(
        [sys.executable, "-m", "api_cli", "train", "--steps", "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 78, result.stderr
    assert "TRAINQ_DATA_DIR=" in result.stderr and "is not a directory" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "trainq.db").exists()
