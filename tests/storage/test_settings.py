"""Every numeric TRAINQ_* setting has a range: a value outside it fails at start (exit 78)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api_cli.exit_codes import ExitCode, exit_code_for
from storage import ConfigurationError, Settings
from storage.settings import RANGES


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("TRAINQ_LEASE_TTL_S", "1e-9", "from 1 to 3600"),
        ("TRAINQ_LEASE_TTL_S", "86400", "from 1 to 3600"),
        ("TRAINQ_RECONCILE_EVERY_S", "1e-9", "from 0.5 to 3600"),
        ("TRAINQ_REDISPATCH_AFTER_S", "0.001", "from 1 to 86400"),
        ("TRAINQ_MAX_ATTEMPTS", "0.5", "whole number from 1 to 100"),
        ("TRAINQ_MAX_ATTEMPTS", "3.0", "whole number from 1 to 100"),
        ("TRAINQ_MAX_ATTEMPTS", "0", "whole number from 1 to 100"),
        ("TRAINQ_MAX_ATTEMPTS", "1000000000000", "whole number from 1 to 100"),
        ("TRAINQ_LEASE_TTL_S", "nan", "from 1 to 3600"),
        ("TRAINQ_LEASE_TTL_S", "inf", "from 1 to 3600"),
        ("TRAINQ_LEASE_TTL_S", "thirty", "from 1 to 3600"),
        ("TRAINQ_DATA_CACHE_MAX_BYTES", "0", "whole number from 1048576 to 1125899906842624"),
        ("TRAINQ_DATA_CACHE_MAX_BYTES", "20GiB", "whole number from 1048576 to"),
        ("TRAINQ_DATA_CACHE_MAX_BYTES", "1e10", "whole number from 1048576 to"),
        ("TRAINQ_PACK_MEMORY_BYTES", "1000", "whole number from 16777216 to 1099511627776"),
    ],
)
def test_a_setting_outside_its_range_names_the_variable_the_value_and_the_range(
    variable: str, value: str, accepted: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({variable: value})
    message = str(raised.value)
    assert f"{variable}={value!r}" in message
    assert accepted in message
    assert exit_code_for(raised.value) == ExitCode.CONFIG


@pytest.mark.parametrize("name", sorted(RANGES))
def test_both_ends_of_each_range_are_accepted_and_every_range_says_why(name: str) -> None:
    bounds = RANGES[name]
    for value in (bounds.low, bounds.high):
        text = str(int(value)) if bounds.integer else repr(value)
        settings = Settings.from_env({f"TRAINQ_{name}": text})
        assert getattr(settings, name.lower()) == value
    assert len(bounds.reason) > 20


def test_the_defaults_lie_inside_their_ranges() -> None:
    settings = Settings.from_env({})
    for name, bounds in RANGES.items():
        assert bounds.low <= getattr(settings, name.lower()) <= bounds.high


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379x/0",
        "redis//trainq:Hunter2Secret@redis:6379/0",
        "garbage:Hunter2Secret@x",
    ],
)
def test_a_malformed_broker_url_fails_at_start_without_showing_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match="TRAINQ_BROKER_URL") as raised:
        Settings.from_env({"TRAINQ_BROKER_URL": url})
    assert "Hunter2Secret" not in str(raised.value)


def test_the_data_cache_lives_under_home_unless_trainq_data_cache_says_where(
    tmp_path: Path,
) -> None:
    default = Settings.from_env({"TRAINQ_HOME": str(tmp_path)})
    chosen = Settings.from_env({"TRAINQ_DATA_CACHE": str(tmp_path / "elsewhere")})

    assert default.data_cache_path == tmp_path / "data-cache"
    assert default.data_cache_max_bytes == 20 * 1024**3
    assert chosen.data_cache_path == tmp_path / "elsewhere"  # created on first use


def test_a_data_cache_setting_naming_a_file_fails_at_start_saying_what_to_do(
    tmp_path: Path,
) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"TRAINQ_DATA_CACHE": str(tmp_path / "a-file")})
    assert "TRAINQ_DATA_CACHE=" in str(raised.value) and "is not a directory" in str(raised.value)
    assert exit_code_for(raised.value) == ExitCode.CONFIG
