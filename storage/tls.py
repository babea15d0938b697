"""How trainq's broker and database URLs ask for TLS, and whom they trust.

A worker on another host needs three things: the broker URL, the database URL and the CA that
signed both servers' certificates (``TRAINQ_CA_FILE``). The URLs say *that* a connection is
encrypted (``rediss://``, ``sslmode=``); the CA file says *whom* to trust. :func:`secured_urls`
writes the CA into each URL where the URL does not name one itself, so that every client that
reads the URL (kombu, redis-py, SQLAlchemy, psycopg, the quick read path) verifies the same way:

- broker: ``rediss://…`` always verifies the server's certificate and host name
  (``ssl_cert_reqs=required`` is added: kombu alone would not verify a bare ``rediss://``),
  against ``ssl_ca_certs=`` (the CA file) or else the system's CAs. Any other ``ssl_cert_reqs``
  (``none``, ``optional``) is refused: anyone on the path could pose as the broker. With a CA
  file, a plain ``redis://`` is refused too.
- database: with a CA file, a ``postgresql://`` URL gets ``sslrootcert=`` (the CA file) and, when
  it names no ``sslmode``, ``sslmode=verify-full``. Other ``sslmode`` values are libpq's to judge.

Free of SQLAlchemy, redis and ssl at import: ``Settings.from_env`` runs at every CLI start.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, quote

from storage.errors import ConfigurationError
from storage.redaction import excerpt, redact

#: The URL forms of PostgreSQL that trainq takes (SQLAlchemy's and libpq's).
_POSTGRES_SCHEMES: Final = ("postgresql+psycopg://", "postgresql://", "postgres://")


def check_ca_file(path: Path, variable: str = "TRAINQ_CA_FILE") -> Path:
    """``path`` made absolute, once it is known to hold at least one readable PEM certificate.

    Raises:
        ConfigurationError: the file is missing, unreadable or holds no certificate; the message
            names ``variable``.
    """
    import ssl  # only when a CA is configured: a few milliseconds of every CLI start otherwise

    absolute = path.expanduser().absolute()
    shown = excerpt(redact(str(path)))
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=absolute)
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
        if isinstance(exc, ssl.SSLError):
            problem = "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        raise ConfigurationError(
            f"{variable}={shown} cannot be used: {problem}. Point it at the CA certificate that "
            "signed the broker's and the database's certificates (ca.crt from "
            "deploy/tls/make-certs.sh), or unset it."
        ) from None
    return absolute


def secured_urls(
    broker_url: str | None,
    database_url: str,
    ca_file: Path | None,
    *,
    broker_variable: str = "TRAINQ_BROKER_URL",
) -> tuple[str | None, str]:
    """The broker and database URLs as every client must use them (see the module docstring).

    Raises:
        ConfigurationError: the broker URL asks for TLS without verification, or for plain text
            while a CA file is set; the message names ``broker_variable``.
    """
    if broker_url is not None:
        broker_url = _secured_broker_url(broker_url, ca_file, broker_variable)
    if ca_file is not None and database_url.startswith(_POSTGRES_SCHEMES):
        database_url = _with_parameters(
            database_url, {"sslrootcert": str(ca_file), "sslmode": "verify-full"}
        )
    return broker_url, database_url


def _secured_broker_url(url: str, ca_file: Path | None, variable: str) -> str:
    shown = excerpt(redact(url))
    if not url.startswith("rediss://"):
        if ca_file is None:
            return url
        raise ConfigurationError(
            f"{variable}={shown} is plain text (redis://) while TRAINQ_CA_FILE is set: use "
            "rediss://… to reach the broker over TLS, or unset TRAINQ_CA_FILE."
        )
    requirement = _query(url).get("ssl_cert_reqs", "required")
    if requirement != "required":
        # Only "required" means the same to kombu and redis-py: kombu turns a value it does not
        # know into no verification at all, and redis-py refuses "CERT_REQUIRED".
        raise ConfigurationError(
            f"{variable}={shown} sets ssl_cert_reqs={excerpt(requirement, 40)}; trainq always "
            "checks the broker's certificate (otherwise anyone on the path could pose as the "
            "broker): drop ssl_cert_reqs, or set it to required, and give the CA that signed the "
            "broker's certificate (TRAINQ_CA_FILE=/path/ca.crt, or ssl_ca_certs=/path/ca.crt in "
            "the URL)."
        )
    wanted = {"ssl_cert_reqs": "required"}
    if ca_file is not None:
        wanted["ssl_ca_certs"] = str(ca_file)
    return _with_parameters(url, wanted)


def _query(url: str) -> dict[str, str]:
    query = _split_query(url)[1]
    return dict(parse_qsl(query or "", keep_blank_values=True))


def _split_query(url: str) -> tuple[str, str | None]:
    """``url`` before its query, and the query (None without a ``?``).

    The query starts at the first ``?`` after the last ``@``, as SQLAlchemy reads it, so that a
    password holding ``?`` or ``#`` is never taken for the start of the query.
    """
    start = max(url.rfind("@"), url.find("://") + 3)
    at = url.find("?", start)
    return (url, None) if at < 0 else (url[:at], url[at + 1 :])


def _with_parameters(url: str, wanted: Mapping[str, str]) -> str:
    """``url`` with each of ``wanted``'s parameters the query does not set already appended.

    Appended to the text as it is, never re-assembled from parsed parts: a URL trainq does not
    understand keeps every character, password included, where its author put it.
    """
    present = _query(url)
    missing = {key: value for key, value in wanted.items() if key not in present}
    if not missing:
        return url
    added = "&".join(f"{key}={quote(value, safe='/')}" for key, value in missing.items())
    query = _split_query(url)[1]
    if query is None:
        return f"{url}?{added}"
    return f"{url}{'' if query == '' or query.endswith('&') else '&'}{added}"
