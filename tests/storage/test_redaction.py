"""``storage.redact`` hides the password of every URL shape and keeps what helps diagnose."""

from __future__ import annotations

import pytest

from storage.redaction import excerpt, redact, redact_counting_work, remember_secrets

PW = "Hunter2Secret"

#: (text holding the secret, something of it that must stay visible)
SHAPES = [
    (f"redis://:{PW}@redis:6379/0", "redis:6379/0"),
    (f"redis://trainq:{PW}@redis:6379/0", "redis://trainq:"),
    (f"rediss://default:{PW}@cache.example.com:6380/1", "cache.example.com:6380"),
    (f"redis://{PW}@redis:6379/0", "@redis:6379"),
    (f"redis://127.0.0.1:1/0?password={PW}", "127.0.0.1:1/0?password="),
    (f"redis://h:1/0?db=2&PASSWORD={PW}&x=1", "&x=1"),
    (f"redis://h:1/0?pass={PW}", "h:1"),
    (f"redis://h:1/0?Passwd={PW}", "h:1"),
    (f"redis://h:1/0?pwd={PW}", "h:1"),
    (f"redis://h:1/0?token={PW}", "h:1"),
    (f"redis://h:1/0?SECRET={PW}", "h:1"),
    (f"redis://h:1/0?sentinel_password={PW}", "h:1"),
    (f"redis://h:1/0?pass%77ord={PW}", "h:1"),
    (f"redis://:{PW}%40x%3Ay@h:1/0", "@h:1/0"),
    (f"redis://:p@ss:{PW}@h:1/0", "@h:1/0"),
    (f"redis//trainq:{PW}@redis:6379/0", "redis:6379"),
    (f"garbage:{PW}@x", "@x"),
    (f"trainq:{PW}@redis:6379", "redis:6379"),
    (f"redis://:{PW}@[::1]:6379/0", "[::1]:6379"),
    (f"redis://:{PW}@[2001:db8::1]:6379/0", "[2001:db8::1]"),
    (f"sentinel://:{PW}@s1:26379;sentinel://:{PW}@s2:26379", "s1:26379"),
    (f"redis://:{PW}@h1:6379,redis://:{PW}@h2:6379", "h1:6379"),
    (f"unix://:{PW}@/run/redis.sock?db=0", "/run/redis.sock"),
    (f"redis+socket:///run/redis.sock?password={PW}", "/run/redis.sock"),
    (f"postgresql+psycopg://postgres:{PW}@db:5432/trainq", "postgres:"),
    (f"postgresql+psycopg://postgres@db/trainq?password={PW}", "postgres@db/trainq"),
    (f"postgresql://u:{PW}@h1:5432,h2:5433/db", "h2:5433/db"),
    (f"postgresql://u:{PW}@/db?host=/var/run/postgresql", "host=/var/run/postgresql"),
    (f"postgresql+psycopg://postgres:{PW}@127.0.0.1:54x2/db", "127.0.0.1:54x2"),
    (f"host=db port=5432 user=postgres password={PW} dbname=x", "dbname=x"),
    (f"host=db password = '{PW} with spaces' dbname=x", "dbname=x"),
    (f"TRAINQ_BROKER_URL='redis://h:1/0?password={PW}' is not answering", "is not answering"),
    (f"TRAINQ_BROKER_URL='garbage:{PW}@x' is not a Redis URL", "' is not a Redis URL"),
    (f"cannot connect to redis://:{PW}@h:1/0: Connection refused.", "Connection refused."),
    # Characters URL parsers split on or treat specially, inside the password.
    (f"redis://user:{PW}#@127.0.0.1:1/0", "127.0.0.1:1/0"),
    (f"redis://user:{PW}#frag@127.0.0.1:1/0", "127.0.0.1:1/0"),
    (f"redis://user:{PW}?q=1@h:1/0", "@h:1/0"),
    (f"redis://user:a/{PW}@h:1/0", "@h:1/0"),
    (f"redis://user:{PW}@x@h:1/0", "@h:1/0"),
    (f"redis://user:{PW}%23%40@h:1/0", "@h:1/0"),
    (f"redis://user:{PW}[@h:1/0", "@h:1/0"),
    (f"redis://user:{PW}]@[::1]:1/0", "[::1]:1/0"),
    (f"redis://user:{PW}=x@h:1/0", "@h:1/0"),
    (f"redis://user:{PW}&x=1@h:1/0", "@h:1/0"),
    (f"redis://user:{PW};x@h:1/0", "@h:1/0"),
    (f"redis://user:{PW},x@h:1/0", "@h:1/0"),
    (f"redis://user:{PW}\\x@h:1/0", "@h:1/0"),
    (f"redis://user:{PW}'x@h:1/0", "@h:1/0"),
    (f"redis://user:é{PW}ü@h:1/0", "@h:1/0"),
    # Whitespace inside the password cuts the URL into words that each look harmless.
    (f"redis://user:{PW} x@h:1/0", "@h:1/0"),
    (f"redis://user:ab {PW}@h:1/0", "@h:1/0"),
    (f"redis://user:ab {PW} cd@h:1/0 is down", "@h:1/0 is down"),
    (f"redis://user:{PW}\nx@h:1/0", "@h:1/0"),
    (f"redis://user:{PW}\tx@h:1/0", "@h:1/0"),
    (f"the broker at redis://user:{PW}\r\nx@h:1/0 does not answer", "does not answer"),
    # A password=... inside another parameter, plain or percent-encoded (once or twice).
    (f"postgresql://u@h/db?options=-c%20password%3D{PW}", "postgresql://u@h/db?options="),
    (f"postgresql://u@h/db?options=-c+password%3D{PW}&x=1", "&x=1"),
    (f"postgresql://u@h/db?options=-c%2520password%253D{PW}", "u@h/db"),
    (f"host=h options='-c password={PW}' dbname=x", "dbname=x"),
    (f"host=h options='-c password = {PW}' dbname=x", "dbname=x"),
]


@pytest.mark.parametrize(("text", "visible"), SHAPES)
def test_redact_hides_the_password_and_keeps_the_rest(text: str, visible: str) -> None:
    redacted = redact(text)
    assert PW not in redacted
    assert "Hunter2" not in redacted
    assert visible in redacted


@pytest.mark.parametrize(
    "text",
    [
        "postgresql+psycopg://postgres@127.0.0.1:5432/trainq",
        "redis://127.0.0.1:6379/0",
        "sqlite:////home/me/.trainq/trainq.db",
        "workers online: 2 trainq@host-a trainq@host-b",
        "run 7 failed: invalid config: steps: must be at most 10000000 (got 0)",
        "check that Redis is running and TRAINQ_BROKER_URL (host, port, password) is right",
    ],
)
def test_redact_leaves_text_without_secrets_unchanged(text: str) -> None:
    assert redact(text) == text


def test_redact_is_idempotent() -> None:
    once = redact(f"redis://u:{PW}@h:1/0?password={PW}")
    assert redact(once) == once == "redis://u:***@h:1/0?password=***"


@pytest.mark.parametrize(
    "text",
    [
        f"redis://***{PW}@h:1/0",
        f"redis://u:x:***{PW}@h:1/0",
        f"redis://u:{PW}:***@h:1/0",
        f"redis://:***{PW}@h:1/0",
    ],
)
def test_a_password_that_looks_masked_is_still_masked(text: str) -> None:
    assert PW not in redact(text)


def test_a_piece_of_a_remembered_password_is_masked_with_no_url_around_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("storage.redaction._REMEMBERED.secrets", ())  # forgotten after the test
    remember_secrets(f"redis://user:{PW}#x y@127.0.0.1:1/0")
    message = f"Port could not be cast to integer value as '{PW}'"
    assert redact(message) == "Port could not be cast to integer value as '***'"


#: Inputs that made the former regular expressions backtrack over the whole text at every start.
HOSTILE_UNITS = [
    "x",
    "a=",
    "k" * 80 + "=",
    "@",
    "a://",
    ",a://",
    "a:b@",
    "password='",
    "password=\\",
    "x%3D",
    " ",
    "//a:b ",
    "redis://u:p ",
]
MIB = 1024 * 1024


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_redacting_twice_the_text_costs_twice_the_work(unit: str) -> None:
    n = 64 * 1024 // len(unit)
    _, work_n = redact_counting_work(unit * n)
    _, work_2n = redact_counting_work(unit * (2 * n))
    assert work_2n <= 2.05 * work_n


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_redacting_a_mebibyte_looks_at_each_character_a_bounded_number_of_times(
    unit: str,
) -> None:
    text = unit * (MIB // len(unit))
    redacted, work = redact_counting_work(text)
    assert work <= 100 * len(text)
    assert len(redacted) <= len(text)


def test_an_echoed_input_is_cut_to_a_few_hundred_characters_and_counted() -> None:
    assert excerpt("running") == "'running'"
    long = excerpt("x" * 60_000)
    assert long.endswith("… (60000 characters)")
    assert len(long) < 300
