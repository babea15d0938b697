"""The broker over TLS: a real redis-server that speaks TLS only, started by these tests.

trainq status and publishing work over rediss:// with the CA (TRAINQ_CA_FILE, or ssl_ca_certs in
the URL); a worker's transport receives over TLS and keeps its bounded reader there; a plain-text
client, or one that does not trust the server's CA, is refused with exit 69 and a sentence, never
a traceback.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Consumer, Message, Queue

from api_cli.exit_codes import ExitCode
from storage import Database, Repository, Settings
from storage.records import JobKind
from tests.tls_servers import Certificates, TlsRedis, make_certificates, tls_redis
from worker.cluster.bounded_redis import OversizeItem
from worker.cluster.celery_app import celery_config, create_app
from worker.cluster.publisher import Dispatcher

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsRedis]:
    with tls_redis(certificates, tmp_path_factory.mktemp("redis")) as started:
        yield started


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TRAINQ_HOME whose database is at head: trainq status then only asks about the broker."""
    home = tmp_path_factory.mktemp("home")
    Database(f"sqlite:///{home / 'trainq.db'}").upgrade()
    return home


@pytest.fixture
def broker(server: TlsRedis) -> Iterator[redis.Redis[bytes]]:
    client = server.client()
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def tls_settings(server: TlsRedis, home: Path) -> Settings:
    return Settings.from_env(
        {
            "TRAINQ_HOME": str(home),
            "TRAINQ_BROKER_URL": server.url(),
            "TRAINQ_CA_FILE": str(server.certificates.ca),
        }
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


def test_a_rediss_broker_built_in_code_is_still_checked_against_a_ca(tmp_path: Path) -> None:
    # kombu, left alone, connects to a bare rediss:// without checking the certificate.
    settings = Settings(
        home_dir=tmp_path,
        database_url="sqlite://",
        broker_url="rediss://broker.example.org:6379/0",
        data_dir=None,
    )
    assert celery_config(settings)["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    connection = create_app(settings).connection_for_write()
    assert connection.ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    plain = Settings(tmp_path, "sqlite://", "redis://broker.example.org:6379/0", None)
    assert celery_config(plain)["broker_use_ssl"] is None


@pytest.mark.parametrize("form", ["TRAINQ_CA_FILE", "ssl_ca_certs in the URL"])
def test_trainq_status_reaches_the_broker_over_tls(server: TlsRedis, home: Path, form: str) -> None:
    ca = str(server.certificates.ca)
    environ = (
        {"TRAINQ_BROKER_URL": server.url(), "TRAINQ_CA_FILE": ca}
        if form == "TRAINQ_CA_FILE"
        else {"TRAINQ_BROKER_URL": f"{server.url()}?ssl_cert_reqs=required&ssl_ca_certs={ca}"}
    )
    result = trainq(home, environ, "status", "--json")
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["broker"]["ok"] is True and set(report["broker"]["queue_depths"]) >= {"train"}


def test_a_plain_text_client_is_refused_by_the_tls_port_with_a_sentence(
    server: TlsRedis, home: Path
) -> None:
    plain = f"redis://127.0.0.1:{server.port}/0"
    result = trainq(home, {"TRAINQ_BROKER_URL": plain}, "status", "--json")
    assert result.returncode == ExitCode.UNAVAILABLE
    assert "Traceback" not in result.stdout + result.stderr
    error = json.loads(result.stdout)["broker"]["error"]
    assert "if its port speaks TLS, use rediss://" in error


def test_a_broker_whose_certificate_another_ca_signed_is_refused(
    server: TlsRedis, home: Path, tmp_path: Path
) -> None:
    stranger = make_certificates(tmp_path / "other-ca")
    environ = {"TRAINQ_BROKER_URL": server.url(), "TRAINQ_CA_FILE": str(stranger.ca)}
    result = trainq(home, environ, "status", "--json")
    assert result.returncode == ExitCode.UNAVAILABLE
    assert "Traceback" not in result.stdout + result.stderr
    error = json.loads(result.stdout)["broker"]["error"]
    assert "certificate verify failed" in error
    assert "not signed by the CA trainq was given (TRAINQ_CA_FILE" in error


def test_a_broker_reached_by_a_name_its_certificate_lacks_is_refused(
    server: TlsRedis, home: Path
) -> None:
    # The certificate names localhost and 127.0.0.1; 127.0.0.2 is the same server, another name.
    environ = {
        "TRAINQ_BROKER_URL": f"rediss://127.0.0.2:{server.port}/0",
        "TRAINQ_CA_FILE": str(server.certificates.ca),
    }
    result = trainq(home, environ, "status", "--json")
    assert result.returncode == ExitCode.UNAVAILABLE
    assert "IP address mismatch" in json.loads(result.stdout)["broker"]["error"]


def test_a_job_published_over_tls_reaches_a_worker_transport_over_tls(
    server: TlsRedis, broker: redis.Redis[bytes], tmp_path: Path
) -> None:
    settings = tls_settings(server, tmp_path)
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.upgrade()
    repository = Repository(database)
    run = repository.create_run(
        kind=JobKind.TRAIN, config={"steps": 10}, seed=1, queue="train", max_attempts=3
    )
    dispatcher = Dispatcher(settings)
    dispatcher.publish(repository, run)
    assert dispatcher.queue_depths()["train"] == 1  # redis-py's own client, over TLS
    dispatcher.close()

    received: list[Any] = []

    def handle(body: Any, message: Message) -> None:
        received.append((message.headers["task"], body[0]))
        message.ack()

    app = create_app(settings)
    with app.connection_for_read() as connection:
        assert connection.transport_cls == "worker.cluster.redis_transport:Transport"
        with Consumer(connection, [Queue("train")], callbacks=[handle], accept=["json"]):
            connection.drain_events(timeout=5)
    assert received == [("trainq.train_run", [run.id])]
    assert broker.llen("train") == 0 and broker.hlen("unacked") == 0


def test_the_worker_reads_queues_over_tls_with_its_bounded_reader(
    server: TlsRedis, broker: redis.Redis[bytes], tmp_path: Path
) -> None:
    settings = tls_settings(server, tmp_path)
    app = create_app(settings)
    with app.connection_for_read() as connection:
        channel: Any = connection.default_channel  # the transport's own Channel
        params = channel._connparams(asynchronous=True)
    assert issubclass(params["connection_class"], redis.SSLConnection)
    assert params["parser_class"].__name__.startswith("Bounded")
    # The connection the worker would BRPOP with, built from exactly those parameters.
    params.pop("max_connections", None)
    client = redis.Redis(connection_pool=redis.ConnectionPool(**params))
    broker.lpush("train", b"small", b"y" * (40 * MIB))
    assert client.brpop(["train"], timeout=1) == (b"train", b"small")
    tracemalloc.start()
    try:
        oversize = client.brpop(["train"], timeout=5)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert oversize is not None
    item = oversize[1]
    assert isinstance(item, OversizeItem) and item.size_bytes == 40 * MIB
    assert peak_bytes < 2 * MIB  # read off in chunks over TLS too, never held whole
    assert client.ping()  # and the TLS stream is still in step
    client.close()
