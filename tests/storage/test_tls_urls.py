"""The broker and database URLs ask for TLS with verification: rediss:// always checks the
broker's certificate, and TRAINQ_CA_FILE is written into both URLs (storage.tls)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from api_cli.exit_codes import ExitCode, exit_code_for
from storage import ConfigurationError, Settings

PW = "TlsSecret4b9d"
MAKE_CERTS = Path(__file__).resolve().parents[2] / "deploy" / "tls" / "make-certs.sh"


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", str(MAKE_CERTS), str(directory)], check=True, capture_output=True)
    return directory / "ca.crt"


def query_of(url: str | None) -> dict[str, str]:
    assert url is not None
    return dict(parse_qsl(urlsplit(url).query))


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)
    assert exit_code_for(raised.value) == ExitCode.CONFIG
    message = str(raised.value)
    assert PW not in message
    return message


def test_a_rediss_url_always_asks_for_the_brokers_certificate_to_be_checked() -> None:
    # kombu alone would take a bare rediss:// for "encrypt, but trust anyone".
    settings = Settings.from_env({"TRAINQ_BROKER_URL": f"rediss://:{PW}@broker:6379/0"})
    assert settings.broker_url == f"rediss://:{PW}@broker:6379/0?ssl_cert_reqs=required"


def test_the_ca_file_is_written_into_the_broker_url_unless_the_url_names_its_own(
    ca_file: Path,
) -> None:
    settings = Settings.from_env(
        {"TRAINQ_BROKER_URL": f"rediss://:{PW}@broker:6379/0", "TRAINQ_CA_FILE": str(ca_file)}
    )
    assert settings.ca_file == ca_file
    assert query_of(settings.broker_url) == {
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": str(ca_file),
    }
    own = f"rediss://:{PW}@broker:6379/0?ssl_ca_certs=/etc/other-ca.crt"
    settings = Settings.from_env({"TRAINQ_BROKER_URL": own, "TRAINQ_CA_FILE": str(ca_file)})
    assert query_of(settings.broker_url)["ssl_ca_certs"] == "/etc/other-ca.crt"


@pytest.mark.parametrize("requirement", ["none", "optional", "CERT_NONE", "CERT_REQUIRED", "yes"])
def test_a_broker_url_that_does_not_require_a_checked_certificate_is_refused(
    requirement: str,
) -> None:
    message = refusal(
        {"TRAINQ_BROKER_URL": f"rediss://:{PW}@broker:6379/0?ssl_cert_reqs={requirement}"}
    )
    assert message.startswith("TRAINQ_BROKER_URL=")
    assert f"ssl_cert_reqs='{requirement}'" in message and "TRAINQ_CA_FILE" in message


def test_a_plain_text_broker_url_is_refused_when_a_ca_file_is_set(ca_file: Path) -> None:
    message = refusal(
        {"TRAINQ_BROKER_URL": f"redis://:{PW}@broker:6379/0", "TRAINQ_CA_FILE": str(ca_file)}
    )
    assert "is plain text (redis://) while TRAINQ_CA_FILE is set: use rediss://" in message


def test_the_ca_file_makes_a_postgresql_url_verify_the_server_fully(ca_file: Path) -> None:
    url = f"postgresql+psycopg://trainq_app:{PW}@db.example.org:5432/trainq"
    settings = Settings.from_env({"TRAINQ_DATABASE_URL": url, "TRAINQ_CA_FILE": str(ca_file)})
    assert settings.database_url == (f"{url}?sslrootcert={ca_file}&sslmode=verify-full")


def test_a_postgresql_url_keeps_the_sslmode_and_root_certificate_it_names(ca_file: Path) -> None:
    url = f"postgresql://u:{PW}@db/trainq?sslmode=verify-ca&sslrootcert=/etc/db-ca.crt"
    settings = Settings.from_env({"TRAINQ_DATABASE_URL": url, "TRAINQ_CA_FILE": str(ca_file)})
    assert settings.database_url == url


def test_a_password_holding_a_question_mark_is_never_taken_for_the_query(ca_file: Path) -> None:
    url = "postgresql+psycopg://u:pa?ss#wd@db/trainq"
    settings = Settings.from_env({"TRAINQ_DATABASE_URL": url, "TRAINQ_CA_FILE": str(ca_file)})
    assert settings.database_url.startswith(url + "?sslrootcert=")


def test_without_a_ca_file_the_database_url_is_left_as_written() -> None:
    url = f"postgresql+psycopg://u:{PW}@db/trainq?sslmode=verify-full&sslrootcert=system"
    assert Settings.from_env({"TRAINQ_DATABASE_URL": url}).database_url == url


def test_an_sqlite_database_is_left_alone_by_the_ca_file(ca_file: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trainq.db'}"
    settings = Settings.from_env({"TRAINQ_DATABASE_URL": url, "TRAINQ_CA_FILE": str(ca_file)})
    assert settings.database_url == url


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "No such file or directory"),
        ("not a certificate\n", "it holds no PEM certificate"),
    ],
    ids=["missing", "not-a-certificate"],
)
def test_an_unusable_ca_file_is_refused_naming_the_variable(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "ca.crt"
    if content is not None:
        path.write_text(content)
    message = refusal({"TRAINQ_CA_FILE": str(path)})
    assert message.startswith(f"TRAINQ_CA_FILE='{path}' cannot be used: {problem}")


def test_a_relative_ca_file_is_made_absolute_so_every_process_finds_it(
    ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ca_file.parent)
    settings = Settings.from_env(
        {"TRAINQ_BROKER_URL": "rediss://broker:6379/0", "TRAINQ_CA_FILE": "ca.crt"}
    )
    assert settings.ca_file == ca_file
    assert query_of(settings.broker_url)["ssl_ca_certs"] == str(ca_file)
