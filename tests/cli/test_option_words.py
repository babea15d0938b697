"""Errors name the options of the command that was typed, and suggest only what it accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_the_python_api_takes_lr_and_suggests_learning_rate_for_a_typo(tmp_path: Path) -> None:
    import trainq as sdk

    from storage.records import RunStatus
    from tests.cli.conftest import embedded_env
    from worker.errors import InvalidConfigError

    with sdk.Client(sdk.Settings.from_env(embedded_env(tmp_path))) as client:
        with pytest.raises(InvalidConfigError, match="did you mean learning_rate"):
            client.submit(learnig_rate=0.1, steps=100)
        run = client.submit(lr=0.05, steps=100, chunk_steps=100)
        assert run.config["learning_rate"] == 0.05 and "lr" not in run.config
    assert client.repository.get_run(run.id).status is RunStatus.SUCCEEDED


def test_train_takes_learning_rate_as_an_option_name_too(tmp_path: Path) -> None:
    result = trainq_in(tmp_path, "train", "--learning-rate", "-1")
    assert result.returncode == USAGE and "--lr" in result.stderr
