"""A process whose clock is wrong: libfaketime (Debian package ``faketime``) preloaded.

Only the wall clock moves: the monotonic clock is left alone (``FAKETIME_DONT_FAKE_MONOTONIC``),
as on a host whose NTP is off, so timeouts and backoff behave as they do there. Locally a missing
libfaketime skips the calling test; in CI (``CI`` set) it fails it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Where Debian's ``faketime`` package puts the library.
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def require_faketime() -> None:
    """Skip the calling test (fail it in CI) unless libfaketime is installed."""
    if LIBFAKETIME.exists():
        return
    message = f"{LIBFAKETIME} missing: apt-get install faketime"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


def skewed_environment(offset_s: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) for a child whose wall clock is
    ``offset_s`` seconds off (positive: ahead)."""
    env = dict(os.environ if base is None else base)
    env.update(
        LD_PRELOAD=str(LIBFAKETIME),
        FAKETIME=f"{offset_s:+d}s",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
    )
    return env
