"""A hostile option value is echoed in part: the error quotes a few hundred characters of it.

``trainq runs list --status`` followed by 20,000 characters used to take 12.6 s (quadratic
redaction of a message holding the whole value) and printed all of it back.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import trainq_in


def test_a_huge_status_filter_is_refused_with_an_excerpt_of_it(tmp_path: Path) -> None:
    result = trainq_in(tmp_path, "runs", "list", "--status", "x" * 100_000, timeout_s=120)
    assert result.returncode == 2, result.stderr
    assert "--status" in result.stderr
    assert "(100000 characters)" in result.stderr
    assert len(result.stderr) < 1_000
