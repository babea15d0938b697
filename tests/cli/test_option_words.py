"""Errors name the options of the command that was typed, and suggest only what it accepts."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import trainq_in

USAGE, NOT_FOUND = 2, 4


def test_sweep_best_on_an_existing_export_file_names_its_own_options(tmp_path: Path) -> None:
    existing = tmp_path / "best.npz"
    existing.write_bytes(b"kept")
    result = trainq_in(tmp_path, "sweep", "best", "1", "--export", str(existing))
    assert result.returncode == USAGE
    assert f"--export {existing} exists; pass --force" in result.stderr
    assert "--out" not in result.stderr
    forced = trainq_in(tmp_path, "sweep", "best", "1", "--export", str(existing), "--force")
    assert forced.returncode == NOT_FOUND, forced.stderr  # past the file check: no sweep 1
    assert existing.read_bytes() == b"kept"
