"""Hiding secrets in text that may reach a terminal or a log: one function, every URL shape.

Database and broker URLs carry passwords, and they travel into error messages, ``trainq status``
and worker logs, which end up in container logs. :func:`redact` masks every password-like part
of a text while keeping what helps diagnose a problem (scheme, user, host, port, database):

- userinfo passwords: ``redis://user:PW@host``, ``redis://:PW@[::1]:6379/0``, multiple hosts
  ``postgresql://u:PW@h1,h2/db``, and malformed URLs a parser would reject
  (``redis//user:PW@host``, ``garbage:PW@x``, ``user:PW@host`` without a scheme);
- a lone userinfo in a Redis URL (``redis://PW@host``), which is what people write for a
  password-only server;
- ``key=value`` pairs whose key names a secret, in URL queries (``?password=PW``,
  ``&sentinel_password=PW``, any case, percent-encoded keys) and in libpq key=value strings
  (``host=h password='p w'``).

It prefers over-masking to leaking: a password containing ``@`` or ``:`` is masked whole.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

#: What replaces a secret.
MASK = "***"

#: A key is secret when, lower-cased and percent-decoded, it contains one of these.
SECRET_KEY_MARKERS = ("pass", "pwd", "token", "secret", "credential", "auth")

#: ``key=value`` with a libpq-quoted or bare value; a bare value ends at whitespace or ``&``.
_KEY_VALUE = re.compile(
    r"(?P<key>[A-Za-z0-9_.%\-]+)(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&]+)"
)

#: Several URLs in one word (kombu failover lists, sentinel lists) are redacted one by one.
_URL_SEPARATOR = re.compile(r"(?<=[,;])(?=[A-Za-z][A-Za-z0-9+.\-]*://)")

#: Characters that close the quoted or bracketed text a bare value sits in: kept visible.
_CLOSERS = "'\")]>,"

#: The scheme of a URL (or of a malformed ``scheme//`` one) at the end of the text before ``//``.
_SCHEME_BEFORE_SLASHES = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):?$")

#: Schemes whose lone userinfo (``redis://PW@host``) is a password rather than a user name.
_PASSWORD_ONLY_SCHEMES = ("redis", "rediss", "sentinel", "unix", "redis+socket")


def redact(text: str) -> str:
    """Return ``text`` with every password-like part of every URL or DSN in it masked.

    Args:
        text: any text: a URL, an error message, a log line.

    Returns:
        The same text with secrets replaced by ``***``; text without secrets is unchanged.
    """
    masked = _KEY_VALUE.sub(_mask_key_value, text)
    return "".join(_redact_word(word) for word in re.split(r"(\s+)", masked))


def _mask_key_value(match: re.Match[str]) -> str:
    key = unquote(match.group("key")).lower()
    value = match.group("value")
    if not any(marker in key for marker in SECRET_KEY_MARKERS):
        # The value may itself hold secrets: TRAINQ_BROKER_URL='redis://h/0?password=PW'.
        return f"{match.group('key')}{match.group('eq')}{_KEY_VALUE.sub(_mask_key_value, value)}"
    kept = ""
    if value[0] not in "'\"":
        # A bare value inside quotes or brackets ('...?password=PW'): keep the closing characters.
        stripped = value.rstrip(_CLOSERS)
        kept = value[len(stripped) :]
    return f"{match.group('key')}{match.group('eq')}{MASK}{kept}"


def _redact_word(word: str) -> str:
    if "@" not in word:
        return word
    return "".join(_redact_userinfo(part) for part in _URL_SEPARATOR.split(word))


def _redact_userinfo(part: str) -> str:
    at = part.rfind("@")  # the last '@': a password may contain unencoded '@'
    if at < 0:
        return part
    slashes = part.find("//", 0, at)
    start = slashes + 2 if slashes >= 0 else 0
    user, colon, password = part[start:at].partition(":")
    if colon:
        return part if password == MASK else f"{part[:start]}{user}:{MASK}{part[at:]}"
    if slashes < 0 or user == MASK:
        return part  # a user name alone, not in a URL (trainq@worker-host), or masked already
    scheme = _SCHEME_BEFORE_SLASHES.search(part[:slashes])
    if scheme is None or scheme.group(1).lower() in _PASSWORD_ONLY_SCHEMES:
        return f"{part[:start]}{MASK}{part[at:]}"
    return part  # a user name alone (postgresql://postgres@host)


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record with its message and traceback redacted.

    Install it on handlers (a handler's filters see the records of every logger under it).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drops it."""
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
