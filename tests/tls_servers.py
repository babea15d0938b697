"""Throwaway Redis and PostgreSQL servers that speak TLS only, for the TLS tests.

Each is started by the test on a free port with certificates from ``deploy/tls/make-certs.sh``
(the script the compose cluster uses), and stopped after it. The shared services on 6379 and 5432
are never reconfigured. A missing ``redis-server``, ``initdb`` or ``openssl`` skips the tests
locally and fails them in CI, like ``tests.services``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REPO_ROOT = Path(__file__).resolve().parents[1]
MAKE_CERTS = REPO_ROOT / "deploy" / "tls" / "make-certs.sh"
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Certificates:
    """What make-certs.sh wrote into ``directory``."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "private" / "server.key"


def make_certificates(directory: Path, *names: str) -> Certificates:
    """Run deploy/tls/make-certs.sh into ``directory`` (the servers answer for ``names`` too)."""
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed")
    subprocess.run(["sh", str(MAKE_CERTS), str(directory), *names], check=True, capture_output=True)
    return Certificates(directory)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@dataclass(frozen=True)
class TlsRedis:
    """A redis-server on 127.0.0.1:``port`` with TLS only (no plain-text port), no persistence."""

    port: int
    certificates: Certificates

    def url(self, database: int = 0) -> str:
        """``rediss://`` URL of ``database``, without TLS options (they come from the settings)."""
        return f"rediss://127.0.0.1:{self.port}/{database}"

    def client(self) -> redis.Redis[bytes]:
        """A client that trusts the server's CA; it fails at once, never retrying with backoff."""
        return redis.Redis.from_url(
            f"{self.url()}?ssl_ca_certs={self.certificates.ca}",
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )


@contextmanager
def tls_redis(certificates: Certificates, workdir: Path) -> Iterator[TlsRedis]:
    """Start a TLS-only redis-server; yield it; stop it."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
    server = TlsRedis(free_port(), certificates)
    process = subprocess.Popen(
        [
            binary,
            "--port", "0",
            "--tls-port", str(server.port),
            "--bind", "127.0.0.1", "127.0.0.2",  # .2: an address the certificate does not name
            "--tls-cert-file", str(certificates.server_cert),
            "--tls-key-file", str(certificates.server_key),
            "--tls-ca-cert-file", str(certificates.ca),
            "--tls-auth-clients", "no",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        client = server.client()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the TLS redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass(frozen=True)
class TlsPostgres:
    """A PostgreSQL cluster on 127.0.0.1:``port`` accepting TCP over TLS only (trust logins)."""

    port: int

    def url(self, host: str = "localhost") -> str:
        """SQLAlchemy URL of its ``postgres`` database, without TLS options."""
        return f"postgresql+psycopg://postgres@{host}:{self.port}/postgres"


@contextmanager
def tls_postgres(certificates: Certificates) -> Iterator[TlsPostgres]:
    """initdb a throwaway cluster (as the postgres user when run as root), start it with ssl=on
    and ``hostssl`` only in pg_hba.conf; yield it; stop it and delete it."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        unavailable("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    bin_dir = Path(binaries[-1]).parent
    as_root = os.geteuid() == 0
    # Not under pytest's tmp_path: its parent is root's alone, and postgres must reach the files.
    directory = Path(tempfile.mkdtemp(prefix="trainq-tls-pg-"))
    data, cert, key = directory / "data", directory / "server.crt", directory / "server.key"
    shutil.copyfile(certificates.server_cert, cert)
    shutil.copyfile(certificates.server_key, key)
    key.chmod(0o600)  # PostgreSQL refuses a key others may read
    run_as: list[str] = []
    if as_root:  # initdb refuses to run as root
        run_as = ["runuser", "-u", "postgres", "--"]
        for path in (directory, cert, key):
            shutil.chown(path, "postgres")
    server = TlsPostgres(free_port())
    try:
        subprocess.run(
            [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "-N"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        (data / "pg_hba.conf").write_text(
            "hostssl all all 127.0.0.0/8 trust\nhostnossl all all all reject\n"
        )
        options = (
            f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1,127.0.0.2 -c ssl=on "
            f"-c ssl_cert_file={cert} -c ssl_key_file={key} -c fsync=off"
        )
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
             "-l", str(directory / "log"), "-w", "-t", str(int(START_TIMEOUT_S)), "start"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        yield server
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)
