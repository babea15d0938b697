"""No password from TRAINQ_BROKER_URL or TRAINQ_DATABASE_URL is ever printed, in any form.

Messages end up in container logs. A password in a URL query (``?password=``) or in a URL a parser
rejects (``redis//user:PW@host``, ``garbage:PW@x``) used to be printed verbatim by ``trainq status``
and in every error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import embedded_env

PW = "Hunter2Secret"

#: Broker URLs that point nowhere (port 1), or cannot be parsed at all.
BROKER_URLS = [
    f"redis://:{PW}@127.0.0.1:1/6",
    f"redis://127.0.0.1:1/6?password={PW}",
    f"redis://trainq:{PW}@127.0.0.1:1/6?health_check_interval=5",
    f"redis://{PW}@127.0.0.1:1/6",
    f"rediss://:{PW}@[::1]:1/6",
    f"redis://127.0.0.1:1x/6?password={PW}",
    f"redis//trainq:{PW}@127.0.0.1:1/6",
    f"garbage:{PW}@x",
]

#: Database URLs that point nowhere (port 1), or cannot be parsed at all.
DATABASE_URLS = [
    f"postgresql+psycopg://postgres:{PW}@127.0.0.1:1/trainq",
    f"postgresql+psycopg://postgres@127.0.0.1:1/trainq?password={PW}",
    f"postgresql+psycopg://postgres@127.0.0.1:54x2/trainq?password={PW}",
    f"postgresql//postgres:{PW}@127.0.0.1/trainq",
    f"garbage:{PW}@x",
    f"host=127.0.0.1 port=1 password={PW} dbname=trainq",
]

COMMANDS = [("status",), ("train", "--steps", "10")]


def trainq(home: Path, extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = embedded_env(home) | extra_env
    return subprocess.run(
        [sys.executable, "-m", "api_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("url", BROKER_URLS)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_broker_url_password_is_never_printed(
    tmp_path: Path, url: str, command: tuple[str, ...]
) -> None:
    result = trainq(tmp_path, {"TRAINQ_BROKER_URL": url}, *command)
    assert result.returncode in (69, 78), result.stdout + result.stderr
    assert PW not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("url", DATABASE_URLS)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_database_url_password_is_never_printed(
    tmp_path: Path, url: str, command: tuple[str, ...]
) -> None:
    result = trainq(tmp_path, {"TRAINQ_DATABASE_URL": url}, *command)
    assert result.returncode in (69, 78), result.stdout + result.stderr
    assert PW not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "exit_code"),
    [
        ("postgresql+psycopg://postgres@127.0.0.1:54x2/trainq", 78),
        ("redis://127.0.0.1:6379x/0", 78),
    ],
)
def test_a_typo_in_a_url_is_a_bad_setting_naming_the_variable(
    tmp_path: Path, url: str, exit_code: int
) -> None:
    variable = "TRAINQ_DATABASE_URL" if url.startswith("postgresql") else "TRAINQ_BROKER_URL"
    result = trainq(tmp_path, {variable: url}, "runs", "list")
    assert result.returncode == exit_code, result.stderr
    assert variable in result.stderr
