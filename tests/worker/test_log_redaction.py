"""The worker's logs: every line and traceback is redacted; kombu gets credentials it can mask."""

from __future__ import annotations

import io
import logging

import pytest
from kombu import Connection

from worker.cluster.celery_app import install_log_redaction, kombu_broker_url

PW = "Hunter2Secret"


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger(f"trainq.test.redaction.{id(stream)}")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    install_log_redaction(logger)
    install_log_redaction(logger)  # idempotent: Celery sets logging up more than once
    assert len(handler.filters) == 1
    return logger, stream


def test_a_log_line_with_a_url_password_is_redacted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.error("Cannot connect to %s: refused", f"redis://127.0.0.1:1/0?password={PW}")
    logger.warning("broker redis//trainq:%s@redis:6379/0 is malformed", PW)
    text = stream.getvalue()
    assert PW not in text
    # Over-masking beats leaking: the ':' after the value could be part of the password.
    assert "Cannot connect to redis://127.0.0.1:1/0?password=*** refused" in text
    assert "redis:6379/0 is malformed" in text


def test_a_traceback_with_a_url_password_is_redacted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise ConnectionError(f"cannot reach redis://:{PW}@redis:6379/0")
    except ConnectionError:
        logger.exception("consumer failed")
    text = stream.getvalue()
    assert "ConnectionError: cannot reach redis://:***@redis:6379/0" in text
    assert PW not in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"redis://127.0.0.1:6379/0?password={PW}", f"redis://:{PW}@127.0.0.1:6379/0"),
        (f"redis://u@h:1/0?password={PW}", f"redis://u:{PW}@h:1/0"),
        ("redis://h:1/0?username=u%40x&password=p%40w", "redis://u%40x:p%40w@h:1/0"),
        (f"redis://:{PW}@h:1/0", f"redis://:{PW}@h:1/0"),
        ("redis://h:1/0", "redis://h:1/0"),
    ],
)
def test_query_credentials_reach_kombu_in_the_userinfo_where_it_masks_them(
    url: str, expected: str
) -> None:
    converted = kombu_broker_url(url)
    assert converted == expected
    connection = Connection(converted)
    assert PW not in connection.as_uri()
    if "password" in url or PW in url:
        assert connection.password in (PW, "p@w")


@pytest.mark.parametrize(
    "url",
    [
        f"redis://user:{PW}#@redis:6379/0",
        f"redis://user:{PW}?x@redis:6379/0",
        f"redis://user:{PW}@x@redis:6379/0",
        f"redis://user:ab {PW}@redis:6379/0",
        f"redis://user:{PW}\ncd@redis:6379/0",
        f"postgresql://u@db/trainq?options=-c%20password%3D{PW}",
    ],
)
def test_a_log_line_with_a_password_holding_special_characters_is_redacted(
    captured: tuple[logging.Logger, io.StringIO], url: str
) -> None:
    logger, stream = captured
    logger.error("Cannot connect to %s: refused", url)
    text = stream.getvalue()
    assert PW not in text
    assert "Hunter2" not in text
    assert "refused" in text
