"""deploy/redis/entrypoint.sh: Redis in the cluster lets in only the app user, by password.

The script runs here under `sh`, with the official image's docker-entrypoint.sh replaced by a stub;
where a `redis-server` binary is installed, a real server is started with the rendered ACL file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.cluster.compose import REPO_ROOT

ENTRYPOINT = REPO_ROOT / "deploy" / "redis" / "entrypoint.sh"
PASSWORD = "entrypoint-pw-2f9c6d81"
#: Stands in for the official image's entrypoint: records its arguments, then runs them.
STUB = '#!/bin/sh\nprintf "%s\\n" "$@" > "$STUB_ARGS"\nexec "$@"\n'


@dataclass(frozen=True)
class Rendered:
    """What the entrypoint produced: its exit status, stderr, ACL file and the server's argv."""

    returncode: int
    stderr: str
    acl_file: Path
    argv: list[str]


def render(tmp_path: Path, *server_argv: str, **env: str) -> Rendered:
    """Run the entrypoint with ``env`` (on top of PATH) and the server command ``server_argv``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "docker-entrypoint.sh"
    stub.write_text(STUB)
    stub.chmod(0o755)
    acl_file = tmp_path / "acl" / "users.acl"
    args_file = tmp_path / "args.txt"
    environ = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_ACL_FILE": str(acl_file),
        "STUB_ARGS": str(args_file),
        **env,
    }
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), *(server_argv or ("true",))],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    argv = args_file.read_text().splitlines() if args_file.exists() else []
    return Rendered(result.returncode, result.stderr, acl_file, argv)


def test_the_entrypoint_turns_the_default_user_off_and_stores_only_a_hash(
    tmp_path: Path,
) -> None:
    rendered = render(tmp_path, REDIS_USER="trainq", REDIS_PASSWORD=PASSWORD)

    assert rendered.returncode == 0, rendered.stderr
    lines = rendered.acl_file.read_text().splitlines()
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    assert lines[0].startswith("user default off ")
    assert lines[1] == f"user trainq on #{digest} ~* &* +@all -@dangerous"
    assert PASSWORD not in rendered.acl_file.read_text()
    assert rendered.acl_file.stat().st_mode & 0o077 == 0, "the ACL file is private"
    assert rendered.argv[-2:] == ["--aclfile", str(rendered.acl_file)]


@pytest.mark.parametrize("password", [None, ""])
def test_the_entrypoint_refuses_to_start_redis_without_a_password(
    tmp_path: Path, password: str | None
) -> None:
    env = {"REDIS_USER": "trainq"} | ({} if password is None else {"REDIS_PASSWORD": password})

    rendered = render(tmp_path, **env)

    assert rendered.returncode != 0
    assert "REDIS_PASSWORD" in rendered.stderr
    assert rendered.argv == [], "redis-server must not start"


@pytest.mark.parametrize("user", ["default", "two words", "x\nuser evil on nopass"])
def test_the_entrypoint_refuses_a_user_name_that_would_change_the_acl(
    tmp_path: Path, user: str
) -> None:
    rendered = render(tmp_path, REDIS_USER=user, REDIS_PASSWORD=PASSWORD)

    assert rendered.returncode != 0
    assert rendered.argv == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[int]:
    """A throwaway redis-server started through the entrypoint; yields its port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    server += ["--dir", str(tmp_path), "--protected-mode", "yes"]
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    stub = stub_dir / "docker-entrypoint.sh"
    stub.write_text('#!/bin/sh\nexec "$@"\n')
    stub.chmod(0o755)
    environ = {
        "PATH": f"{stub_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_ACL_FILE": str(tmp_path / "acl" / "users.acl"),
        "REDIS_USER": "trainq",
        "REDIS_PASSWORD": PASSWORD,
    }
    log = (tmp_path / "redis.log").open("w")
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), *server], env=environ, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        client = redis.Redis(port=port, username="trainq", password=PASSWORD)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"redis-server did not start: {(tmp_path / 'redis.log').read_text()}")
            time.sleep(0.05)
        client.close()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_redis_with_the_rendered_acl_turns_strangers_away(acl_redis: int) -> None:
    stranger = redis.Redis(port=acl_redis)
    wrong_password = redis.Redis(port=acl_redis, username="trainq", password="guess")
    try:
        with pytest.raises(redis.AuthenticationError):
            stranger.ping()
        with pytest.raises(redis.AuthenticationError):
            wrong_password.ping()
    finally:
        stranger.close()
        wrong_password.close()


def test_redis_with_the_rendered_acl_gives_the_app_user_queues_but_no_dangerous_commands(
    acl_redis: int,
) -> None:
    app = redis.Redis(port=acl_redis, username="trainq", password=PASSWORD)
    try:
        app.lpush("train", "message")
        assert app.brpop(["train"], timeout=1) == (b"train", b"message")
        assert app.publish("/0.celery.pidbox", "ping") == 0
        for dangerous in (app.flushall, lambda: app.config_get("*"), lambda: app.keys("*")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                dangerous()
    finally:
        app.close()
