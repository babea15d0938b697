"""PostgreSQL over TLS: a throwaway cluster that accepts TCP over TLS only, started by these tests
(the shared PostgreSQL on 5432 is never reconfigured).

With TRAINQ_CA_FILE, the engine and the quick read path both connect with sslmode=verify-full; a
plain-text client, a client that does not trust the server's CA, or one that reaches the server by
a name its certificate lacks is refused with exit 69 and a sentence, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api_cli.exit_codes import ExitCode
from storage import Database, Settings
from storage.quick_reads import QuickReader
from tests.tls_servers import Certificates, TlsPostgres, make_certificates, tls_postgres

IS_ENCRYPTED = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server(certificates: Certificates) -> Iterator[TlsPostgres]:
    with tls_postgres(certificates) as started:
        database = Database(verified(started, certificates).database_url)
        database.upgrade()
        database.dispose(close=True)
        yield started


def verified(server: TlsPostgres, certificates: Certificates) -> Settings:
    return Settings.from_env(
        {"TRAINQ_DATABASE_URL": server.url(), "TRAINQ_CA_FILE": str(certificates.ca)}
    )


def trainq(home: Path, environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINQ_")}
    env.update(environ, TRAINQ_HOME=str(home), PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "api_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_engine_and_the_quick_reads_connect_over_verified_tls(
    server: TlsPostgres, certificates: Certificates
) -> None:
    settings = verified(server, certificates)
    assert "sslmode=verify-full" in settings.database_url
    database = Database(settings.database_url)
    with database.engine.connect() as connection:
        assert connection.execute(text(IS_ENCRYPTED)).scalar() is True
    database.dispose(close=True)
    reader = QuickReader.open(settings.database_url)
    assert reader is not None  # the query parameters travel to psycopg; it does not step aside
    try:
        assert reader._fetch(IS_ENCRYPTED, []) == [(True,)]
    finally:
        reader.close()


def test_trainq_status_and_runs_list_work_over_tls(
    server: TlsPostgres, certificates: Certificates, tmp_path: Path
) -> None:
    environ = {"TRAINQ_DATABASE_URL": server.url(), "TRAINQ_CA_FILE": str(certificates.ca)}
    status = trainq(tmp_path, environ, "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["database"]["ok"] is True
    listing = trainq(tmp_path, environ, "runs", "list", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout) == []


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("plain text", "no encryption"),
        ("another CA", "certificate verify failed"),
        ("a name the certificate lacks", "does not match host name"),
    ],
)
def test_a_connection_that_is_not_verified_tls_is_refused_with_a_sentence(
    server: TlsPostgres, certificates: Certificates, tmp_path: Path, case: str, said: str
) -> None:
    url, ca = server.url(), certificates.ca
    if case == "plain text":
        url += "?sslmode=disable"
    elif case == "another CA":
        ca = make_certificates(tmp_path / "other-ca").ca
    else:
        url = server.url(host="127.0.0.2")
    result = trainq(tmp_path, {"TRAINQ_DATABASE_URL": url, "TRAINQ_CA_FILE": str(ca)}, "status")
    assert result.returncode == ExitCode.UNAVAILABLE, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert said in result.stdout + result.stderr
