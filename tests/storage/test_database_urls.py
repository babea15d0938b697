"""Database URLs: a typo is a configuration error (exit 78), and no password shows in messages."""

from __future__ import annotations

import pytest

from api_cli.exit_codes import ExitCode, exit_code_for
from storage import ConfigurationError, Database

PW = "Hunter2Secret"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:54x2/db",
        f"postgresql+psycopg://postgres:{PW}@127.0.0.1:54x2/db",
        f"garbage:{PW}@x",
        f"postgresql//postgres:{PW}@db/trainq",
    ],
)
def test_a_malformed_database_url_is_a_configuration_error_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigurationError, match="TRAINQ_DATABASE_URL") as raised:
        Database(url)
    assert exit_code_for(raised.value) == ExitCode.CONFIG
    assert PW not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://postgres:{PW}@127.0.0.1:5432/trainq",
        f"postgresql+psycopg://postgres@127.0.0.1:5432/trainq?password={PW}",
        f"postgresql://postgres@127.0.0.1/trainq?sslmode=disable&PassWord={PW}",
    ],
)
def test_the_url_a_database_shows_hides_every_password_form(url: str) -> None:
    shown = Database(url).url
    assert PW not in shown
    assert "127.0.0.1" in shown
