"""Hiding secrets in text that may reach a terminal or a log: one function, every URL shape.

Database and broker URLs carry passwords, and they travel into error messages, ``trainq status``
and worker logs, which end up in container logs. :func:`redact` masks every password-like part
of a text while keeping what helps diagnose a problem (scheme, user, host, port, database):

- userinfo passwords: ``redis://user:PW@host``, ``redis://:PW@[::1]:6379/0``, multiple hosts
  ``postgresql://u:PW@h1,h2/db``, and malformed URLs a parser would reject
  (``redis//user:PW@host``, ``garbage:PW@x``, ``user:PW@host`` without a scheme), including
  passwords holding what a parser splits on (``# ? / @ [ ]``) and whitespace;
- a lone userinfo in a Redis URL (``redis://PW@host``), which is what people write for a
  password-only server;
- ``key=value`` pairs whose key names a secret, in URL queries (``?password=PW``,
  ``&sentinel_password=PW``, any case, percent-encoded keys and ``=``), in libpq key=value strings
  (``host=h password='p w'``) and inside other values (``options=-c%20password%3DPW``);
- the secrets of the configured URLs themselves (:func:`remember_secrets`), wherever they show up:
  a parser's complaint quotes a piece of a password with no URL around it.

It prefers over-masking to leaking: a password containing ``@`` or ``:`` is masked whole.

Every step is linear in the text: the scanner visits each ``=``, ``://`` and ``@`` once, and a
regular expression only ever runs over a window of bounded size or over text it consumes once.
:func:`redact_counting_work` reports that work, so tests check it by counting, never timing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, unquote_plus

#: What replaces a secret.
MASK = "***"

#: A key is secret when, lower-cased and percent-decoded, it contains one of these.
SECRET_KEY_MARKERS = ("pass", "pwd", "token", "secret", "credential", "auth")

#: How much of a user's input an error message quotes; the rest is counted, not shown.
ECHO_LIMIT_CHARS = 200

#: Longest key looked at before a ``=``; a longer run is judged by its last characters.
_MAX_KEY_CHARS = 64
#: Longest gap of blanks between a key and its ``=`` (``password = 'x'`` in a libpq string).
_MAX_KEY_GAP_CHARS = 16
#: Longest URL scheme looked at before a ``//``; longer runs are no scheme trainq knows.
_MAX_SCHEME_CHARS = 32
#: How far past whitespace a password in a URL is followed to its ``@``.
_MAX_SPLIT_PASSWORD_CHARS = 256
#: Pieces of a remembered secret shorter than this are not masked on their own (they would mask
#: ordinary words); the whole secret always is.
_MIN_PIECE_CHARS = 4

_KEY_CLASS = r"A-Za-z0-9_.%\-"
#: ``=`` and its percent-encoded forms (once or twice encoded), which separate a key from a value.
_SEPARATOR = re.compile(r"=|%(?:25)?3[dD]")
#: A key and the blanks after it, read backwards from a ``=`` (over a reversed, bounded window).
_KEY_BACKWARDS = re.compile(
    rf"[ \t]{{0,{_MAX_KEY_GAP_CHARS}}}(?P<key>[{_KEY_CLASS}]{{1,{_MAX_KEY_CHARS + 1}}})"
)
#: Possessive quantifiers: a value is read once, with no backtracking.
_BLANKS = re.compile(r"\s*+")
_QUOTED = {
    "'": re.compile(r"'(?:[^'\\]++|\\.)*+'", re.DOTALL),
    '"': re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL),
}
_BARE_VALUE = re.compile(r"[^\s&]*+")
#: Characters that close the quoted or bracketed text a bare value sits in: kept visible.
_CLOSERS = "'\")]>,"

_WORDS = re.compile(r"(\s+)")
_SCHEME_CLASS = re.compile(rf"[A-Za-z0-9+.\-]{{1,{_MAX_SCHEME_CHARS + 1}}}")
#: Schemes whose lone userinfo (``redis://PW@host``) is a password rather than a user name.
_PASSWORD_ONLY_SCHEMES = ("redis", "rediss", "sentinel", "unix", "redis+socket")
#: Where a remembered secret is cut into the pieces a parser or a log may show on their own.
_PIECE_SEPARATORS = re.compile(r"[\s#?/@:\[\]%&=+;,'\"]+")


@dataclass
class _Scan:
    """One redaction: the text as it is rewritten, and the characters looked at so far."""

    text: str
    work_chars: int = 0
    masked: list[str] = field(default_factory=list)


def redact(text: str) -> str:
    """Return ``text`` with every password-like part of every URL or DSN in it masked.

    Args:
        text: any text: a URL, an error message, a log line.

    Returns:
        The same text with secrets replaced by ``***``; text without secrets is unchanged.
    """
    return _redact(text).text


def redact_counting_work(text: str) -> tuple[str, int]:
    """:func:`redact`, also returning how many characters its steps looked at (for tests).

    The count bounds the time taken: every regular expression counted ran over a window of at
    most a few hundred characters, or over characters it consumed and no later step reads again.
    """
    scan = _redact(text)
    return scan.text, scan.work_chars


def excerpt(text: str, limit_chars: int = ECHO_LIMIT_CHARS) -> str:
    """``repr(text)`` for an error message, cut after ``limit_chars`` characters.

    A longer text is quoted up to there and followed by ``… (N characters)``, so that a hostile
    input of a megabyte costs a line, not a megabyte, in every message and log that echoes it.
    """
    if len(text) <= limit_chars:
        return repr(text)
    return f"{text[:limit_chars]!r}… ({len(text)} characters)"


def remember_secrets(url: str) -> None:
    """Mask the secrets of ``url`` (a configured URL) in every later :func:`redact` output.

    A parser that rejects a URL may quote a piece of its password with nothing around it that
    looks like a URL ("Port could not be cast to integer value as 'S3cret'"); only knowing the
    secret masks that. Each secret is remembered whole, percent-decoded, and cut where parsers
    cut (whitespace, ``# ? / @ :`` …) into pieces of at least four characters.
    """
    found = _redact(url).masked
    pieces: set[str] = set()
    for secret in found:
        for form in (secret, unquote(secret), unquote_plus(secret)):
            pieces.add(form)
            pieces.update(_PIECE_SEPARATORS.split(form))
    _REMEMBERED.add(piece for piece in pieces if len(piece) >= _MIN_PIECE_CHARS)


class _Remembered:
    """The secrets of this process's configured URLs, longest first (masked whole first)."""

    def __init__(self) -> None:
        self.secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        fresh = {secret for secret in secrets if MASK not in secret}
        with self._lock:  # readers see the old tuple or the new one, never a half-built one
            merged = set(self.secrets) | fresh
            self.secrets = tuple(sorted(merged, key=len, reverse=True))


_REMEMBERED = _Remembered()


def _redact(text: str) -> _Scan:
    scan = _Scan(text)
    for secret in _REMEMBERED.secrets:
        scan.work_chars += len(scan.text)
        scan.text = scan.text.replace(secret, MASK)
    # Userinfo first: a key=value inside a password (redis://u:pw=x@h) must not eat its '@'.
    _mask_userinfo(scan)
    _mask_key_values(scan)
    return scan


def _mask_key_values(scan: _Scan) -> None:
    """Mask the value of every ``key=value`` whose key names a secret, in one pass."""
    text, out, pos = scan.text, [], 0
    scan.work_chars += len(text)
    lowered = text.lower()
    if "%" not in text and not any(marker in lowered for marker in SECRET_KEY_MARKERS):
        return  # no key can name a secret: the common case of a log line, at C speed
    while (separator := _SEPARATOR.search(text, pos)) is not None:
        scan.work_chars += separator.end() - pos
        value_start = separator.end()
        if not _is_secret_key(scan, text, pos, separator.start()):
            # Not consumed: the value may hold secrets itself (options='-c password=PW').
            out.append(text[pos:value_start])
            pos = value_start
            continue
        blanks = _BLANKS.match(text, value_start)
        assert blanks is not None  # \s* always matches
        value_start = blanks.end()
        value_end, kept_end = _value_end(text, value_start)
        scan.work_chars += kept_end - separator.end()
        out.append(text[pos:value_start])
        if value_end > value_start:
            scan.masked.append(text[value_start:value_end].strip("'\""))
            out.append(MASK)
        out.append(text[value_end:kept_end])
        pos = kept_end
    out.append(text[pos:])
    scan.text = "".join(out)


def _is_secret_key(scan: _Scan, text: str, low: int, separator_at: int) -> bool:
    window_start = max(low, separator_at - _MAX_KEY_GAP_CHARS - _MAX_KEY_CHARS - 1)
    window = text[window_start:separator_at][::-1]
    scan.work_chars += len(window)
    key = _KEY_BACKWARDS.match(window)
    if key is None:
        return False
    name = unquote(key.group("key")[::-1]).lower()
    return any(marker in name for marker in SECRET_KEY_MARKERS)


def _value_end(text: str, start: int) -> tuple[int, int]:
    """Where a secret value starting at ``start`` ends, and where the kept closers after it end."""
    quoted = _QUOTED.get(text[start : start + 1])
    if quoted is not None:
        match = quoted.match(text, start)
        # An unclosed quote (a message cut short) hides everything after it.
        end = match.end() if match is not None else len(text)
        return end, end
    bare = _BARE_VALUE.match(text, start)
    assert bare is not None  # [^\s&]* always matches
    value = bare.group()
    return start + len(value.rstrip(_CLOSERS)), bare.end()


def _mask_userinfo(scan: _Scan) -> None:
    """Mask the password part of every ``user:password@`` (and lone Redis userinfo)."""
    scan.work_chars += len(scan.text)
    if "@" not in scan.text:
        return  # no userinfo anywhere: the common case, at C speed
    words = _WORDS.split(scan.text)
    out: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        stop = _password_split_by_whitespace(scan, words, index) if "//" in word else -1
        if stop > index:
            word = "".join(words[index : stop + 1])
            index = stop
        if "@" in word:
            word = "".join(_redact_userinfo(scan, part) for part in _url_parts(scan, word))
        out.append(word)
        index += 1
    scan.text = "".join(out)


def _password_split_by_whitespace(scan: _Scan, words: list[str], index: int) -> int:
    """The index of the word holding the ``@`` that ends a password cut by whitespace, or -1.

    ``redis://user:p w@host`` splits into words that each look harmless; a URL whose authority
    has a ``:`` but no ``@`` and no ``/`` after it is followed over at most a few hundred
    characters to the ``@`` that ends its userinfo.
    """
    word = words[index]
    slashes = word.find("//")
    authority = word[slashes + 2 :] if slashes >= 0 else ""
    if ":" not in authority or "@" in authority or "/" in authority:
        return -1
    budget = _MAX_SPLIT_PASSWORD_CHARS
    for later in range(index + 1, len(words)):
        piece = words[later]
        budget -= len(piece)
        if budget < 0:
            return -1
        scan.work_chars += len(piece)
        at, slash = piece.find("@"), piece.find("/")
        if at >= 0 and (slash < 0 or at < slash):
            return later
        if slash >= 0 or "//" in piece:
            return -1
    return -1


def _url_parts(scan: _Scan, word: str) -> Iterable[str]:
    """Cut a word where a new URL starts after ``,`` or ``;`` (failover and sentinel lists)."""
    start, search_from = 0, 0
    while (slashes := word.find("://", search_from)) >= 0:
        scheme_start = _scheme_start(scan, word, slashes)
        if scheme_start > start and word[scheme_start - 1] in ",;":
            yield word[start:scheme_start]
            start = scheme_start
        search_from = slashes + 3
    scan.work_chars += len(word)
    yield word[start:]


def _scheme_start(scan: _Scan, word: str, end: int) -> int:
    """Where the scheme ending at ``end`` starts; ``-1`` if there is none within the bound."""
    window = word[max(0, end - _MAX_SCHEME_CHARS - 1) : end][::-1]
    scan.work_chars += len(window)
    run = _SCHEME_CLASS.match(window)
    if run is None or len(run.group()) > _MAX_SCHEME_CHARS:
        return -1
    scheme = run.group()[::-1]
    letter = next((i for i, char in enumerate(scheme) if char.isascii() and char.isalpha()), -1)
    return -1 if letter < 0 else end - len(scheme) + letter


def _redact_userinfo(scan: _Scan, part: str) -> str:
    at = part.rfind("@")  # the last '@': a password may contain unencoded '@'
    if at < 0:
        return part
    scan.work_chars += len(part)
    slashes = part.find("//", 0, at)
    start = slashes + 2 if slashes >= 0 else 0
    user, colon, password = part[start:at].partition(":")
    if colon:
        if password == MASK:
            return part
        scan.masked.append(password)
        return f"{part[:start]}{user}:{MASK}{part[at:]}"
    if slashes < 0 or user == MASK:
        return part  # a user name alone, not in a URL (trainq@worker-host), or masked already
    scheme_end = slashes - 1 if part[slashes - 1 : slashes] == ":" else slashes
    scheme_start = _scheme_start(scan, part, scheme_end)
    scheme = part[scheme_start:scheme_end].lower() if scheme_start >= 0 else None
    if scheme is None or scheme in _PASSWORD_ONLY_SCHEMES:
        scan.masked.append(user)
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
