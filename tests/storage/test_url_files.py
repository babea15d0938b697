"""TRAINQ_BROKER_URL_FILE and TRAINQ_DATABASE_URL_FILE: URLs from files (Docker and Kubernetes
secrets), read once at start; any problem is exit 78 naming the variable, never the content."""

from __future__ import annotations

from pathlib import Path

import pytest

from api_cli.exit_codes import ExitCode, exit_code_for
from storage import ConfigurationError, Settings
from storage.redaction import redact
from storage.settings import MAX_URL_FILE_BYTES

PW = "FileSecret8c1e"
BROKER = f"redis://trainq:{PW}@127.0.0.1:6379/0"
DATABASE = f"postgresql+psycopg://trainq_app:{PW}@db.example.org:5432/trainq"
VARIABLES = {"BROKER_URL": BROKER, "DATABASE_URL": DATABASE}


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)
    assert exit_code_for(raised.value) == ExitCode.CONFIG
    return str(raised.value)


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_a_url_file_is_read_with_one_trailing_newline_cut(tmp_path: Path, ending: str) -> None:
    (tmp_path / "broker").write_text(BROKER + ending)
    (tmp_path / "database").write_text(DATABASE + ending)
    settings = Settings.from_env(
        {
            "TRAINQ_BROKER_URL_FILE": str(tmp_path / "broker"),
            "TRAINQ_DATABASE_URL_FILE": str(tmp_path / "database"),
        }
    )
    assert settings.broker_url == BROKER
    assert settings.database_url == DATABASE


def test_a_password_read_from_a_file_is_masked_wherever_it_shows_up(tmp_path: Path) -> None:
    secret = "Only1nTheFile"
    (tmp_path / "broker").write_text(f"redis://trainq:{secret}@127.0.0.1:6379/0\n")
    Settings.from_env({"TRAINQ_BROKER_URL_FILE": str(tmp_path / "broker")})
    # No URL around it: only remembering the configured secret can mask it.
    assert secret not in redact(f"Port could not be cast to integer value as '{secret}'")


@pytest.mark.parametrize("suffix", sorted(VARIABLES))
def test_setting_a_url_and_its_file_both_is_refused_naming_both(
    tmp_path: Path, suffix: str
) -> None:
    (tmp_path / "url").write_text(VARIABLES[suffix])
    message = refusal(
        {f"TRAINQ_{suffix}": VARIABLES[suffix], f"TRAINQ_{suffix}_FILE": str(tmp_path / "url")}
    )
    assert f"both TRAINQ_{suffix} and TRAINQ_{suffix}_FILE are set" in message
    assert PW not in message


@pytest.mark.parametrize("suffix", sorted(VARIABLES))
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot be read (No such file or directory)"),
        ("directory", "cannot be read (Is a directory)"),
        ("", "is empty"),
        ("\n", "is empty"),
        (f"{BROKER}\n{DATABASE}\n", "holds more than one line"),
        (b"\xff\xfe" + PW.encode(), "is not UTF-8 text"),
        ("x" * (MAX_URL_FILE_BYTES + 1), "is larger than 64 KiB"),
    ],
    ids=["missing", "a-directory", "empty", "a-newline", "two-lines", "binary", "too-large"],
)
def test_an_unusable_url_file_is_refused_naming_its_variable_never_its_content(
    tmp_path: Path, suffix: str, content: str | bytes | None, problem: str
) -> None:
    path = tmp_path / "url"
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    message = refusal({f"TRAINQ_{suffix}_FILE": str(path)})
    assert message.startswith(f"TRAINQ_{suffix}_FILE='{path}' {problem}")
    assert PW not in message and "xxxxxxxx" not in message


def test_an_empty_file_variable_counts_as_unset(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"TRAINQ_BROKER_URL": BROKER, "TRAINQ_BROKER_URL_FILE": "", "TRAINQ_HOME": str(tmp_path)}
    )
    assert settings.broker_url == BROKER


def test_a_malformed_url_from_a_file_is_refused_naming_the_file_variable(tmp_path: Path) -> None:
    (tmp_path / "broker").write_text(f"redis://trainq:{PW}@127.0.0.1:63x79/0")
    message = refusal({"TRAINQ_BROKER_URL_FILE": str(tmp_path / "broker")})
    assert message.startswith("TRAINQ_BROKER_URL (from TRAINQ_BROKER_URL_FILE)=")
    assert "cannot be parsed" in message and PW not in message
