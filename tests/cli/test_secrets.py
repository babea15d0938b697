"""No password from TRAINQ_BROKER_URL or TRAINQ_DATABASE_URL is ever printed, in any form.

Messages end up in container logs. A password in a URL query (``?password=``) or in a URL a parser
rejects (``redis//user:PW@host``, ``garbage:PW@x``) used to be printed verbatim by ``trainq status``
and in every error.
"""

from __future__ import annotations

import subprocess
import sys
import time
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

#: Broker URLs whose password holds what URL parsers split on or treat specially: a parser that
#: rejects them quotes a piece of the password ("Port could not be cast to integer value as
#: 'Hunter2Secret'"), and whitespace cuts them into words that each look harmless.
SPECIAL_PASSWORD_BROKER_URLS = [
    f"redis://user:{PW}#@127.0.0.1:1/6",
    f"redis://user:{PW}#x@127.0.0.1:1/6",
    f"redis://user:{PW}?x@127.0.0.1:1/6",
    f"redis://user:x/{PW}@127.0.0.1:1/6",
    f"redis://user:{PW}@x@127.0.0.1:1/6",
    f"redis://user:{PW}[@127.0.0.1:1/6",
    f"redis://user:{PW}]@[::1]:1/6",
    f"redis://user:{PW}%23%zz@127.0.0.1:1/6",
    f"redis://user:{PW} x@127.0.0.1:1/6",
    f"redis://user:x {PW}@127.0.0.1:1/6",
    f"redis://user:{PW}\nx@127.0.0.1:1/6",
    f"redis://user:{PW}\tx@127.0.0.1:1/6",
    f"redis://user:é{PW}ü@127.0.0.1:1/6",
    f"redis://user:{PW}=x&y@127.0.0.1:1/6",
]

#: Database URLs that point nowhere (port 1), or cannot be parsed at all.
DATABASE_URLS = [
    f"postgresql+psycopg://postgres:{PW}@127.0.0.1:1/trainq",
    f"postgresql+psycopg://postgres@127.0.0.1:1/trainq?password={PW}",
    f"postgresql+psycopg://postgres@127.0.0.1:54x2/trainq?password={PW}",
    f"postgresql//postgres:{PW}@127.0.0.1/trainq",
    f"garbage:{PW}@x",
    f"host=127.0.0.1 port=1 password={PW} dbname=trainq",
    f"postgresql+psycopg://postgres@127.0.0.1:1/trainq?options=-c%20password%3D{PW}",
    f"postgresql+psycopg://postgres@127.0.0.1:1/trainq?options=-c+password%3D{PW}",
    f"host=127.0.0.1 port=1 options='-c password={PW}' dbname=trainq",
    f"postgresql+psycopg://postgres:{PW}#@127.0.0.1:1/trainq",
    f"postgresql+psycopg://postgres:{PW} x@127.0.0.1:1/trainq",
    f"postgresql+psycopg://postgres:{PW}\n@127.0.0.1:1/trainq",
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


@pytest.mark.parametrize("url", SPECIAL_PASSWORD_BROKER_URLS)
def test_trainq_status_never_prints_a_password_holding_special_characters(
    tmp_path: Path, url: str
) -> None:
    result = trainq(tmp_path, {"TRAINQ_BROKER_URL": url}, "status")
    assert result.returncode in (69, 78), result.stdout + result.stderr
    assert PW not in result.stdout + result.stderr
    assert "Hunter2" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def upgraded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose database is ready, so that ``trainq worker`` goes on to the broker."""
    home = tmp_path_factory.mktemp("secrets-worker")
    assert trainq(home, {}, "db", "upgrade").returncode == 0
    return home


def worker_output_until_it_gives_up_or_retries(home: Path, url: str) -> tuple[int | None, str]:
    """Start ``trainq worker``; its output once it has exited or logged a failed connection."""
    env = embedded_env(home) | {"TRAINQ_BROKER_URL": url}
    log = home / "worker.log"
    with log.open("w") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "api_cli", "worker"], env=env, stdout=sink, stderr=sink
        )
    try:
        deadline = time.monotonic() + 90
        while worker.poll() is None and "Cannot connect" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=30)
    return worker.returncode, log.read_text()


@pytest.mark.parametrize(
    "url",
    [
        f"redis://user:{PW}#@127.0.0.1:1/6",
        f"redis://user:{PW}[@127.0.0.1:1/6",
        f"redis://user:{PW} x@127.0.0.1:1/6",
        f"redis://user:x\n{PW}@127.0.0.1:1/6",
    ],
)
def test_trainq_worker_start_up_errors_never_print_a_password_holding_special_characters(
    upgraded_home: Path, url: str
) -> None:
    exit_code, output = worker_output_until_it_gives_up_or_retries(upgraded_home, url)
    assert exit_code in (None, -9, 78), output
    assert "TRAINQ_BROKER_URL" in output or "Cannot connect" in output, output
    assert PW not in output
    assert "Hunter2" not in output
