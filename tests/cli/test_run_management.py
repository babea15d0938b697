"""`trainq runs rename|note|tag|untag|archive|unarchive|delete` and `trainq sweep
archive|unarchive|delete`, as a user runs them; and the same through the Python API."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trainq as sdk

from storage import Database, Repository, Settings
from storage.records import RunStatus
from storage.sweep_records import PlannedTrial
from tests.cli.conftest import Trainq, embedded_env
from tests.cli.seeding import queued_run, succeeded_run


@pytest.fixture(scope="module")
def repository(home: Path) -> Repository:
    settings = Settings.from_env(embedded_env(home))
    database = Database(settings.database_url)
    database.ensure_schema(auto_upgrade=True)
    return Repository(database)


def shown(trainq: Trainq, run_id: int) -> dict[str, Any]:
    result = trainq("runs", "show", str(run_id), "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def listed(trainq: Trainq, *options: str) -> list[int]:
    result = trainq("runs", "list", "--all", "--json", *options)
    assert result.returncode == 0, result.stderr
    return [run["id"] for run in json.loads(result.stdout)]


def test_a_run_is_renamed_noted_and_tagged_and_runs_show_says_so(
    trainq: Trainq, repository: Repository
) -> None:
    run_id = succeeded_run(repository, tags={"team": "vision"}).id

    renamed = trainq("runs", "rename", str(run_id), "baseline, lr 0.01")
    noted = trainq("runs", "note", str(run_id), "diverges after step 4000")
    tagged = trainq("runs", "tag", str(run_id), "stage=final", "team=nlp")
    untagged = trainq("runs", "untag", str(run_id), "team")

    assert renamed.stdout == f"run {run_id}: renamed 'baseline, lr 0.01'\n"
    assert noted.stdout == f"run {run_id}: note saved (24 characters)\n"
    assert tagged.stdout == f"run {run_id}: tags team=nlp, stage=final\n"
    assert untagged.stdout == f"run {run_id}: tags stage=final\n"
    detail = shown(trainq, run_id)
    assert detail["name"] == "baseline, lr 0.01" and detail["tags"] == {"stage": "final"}
    assert (detail["note"], detail["archived_at"]) == ("diverges after step 4000", None)
    table = trainq("runs", "show", str(run_id)).stdout
    assert "note" in table and "diverges after step 4000" in table


def test_bad_names_tags_and_keys_name_the_command_and_the_run(
    trainq: Trainq, repository: Repository
) -> None:
    run_id = succeeded_run(repository, name="kept", tags={"team": "vision"}).id

    too_long = trainq("runs", "rename", str(run_id), "x" * 201)
    bad_pair = trainq("runs", "tag", str(run_id), "team")
    bad_key = trainq("runs", "tag", str(run_id), "bad key=x")
    missing = trainq("runs", "untag", str(run_id), "owner")

    assert too_long.returncode == bad_pair.returncode == bad_key.returncode == 2
    assert missing.returncode == 2
    assert f"error: runs rename {run_id} NAME: name must be at most 200" in too_long.stderr
    assert f"error: runs tag {run_id} team: expected KEY=VALUE" in bad_pair.stderr
    assert f"error: runs tag {run_id}: tag key 'bad key' must be" in bad_key.stderr
    assert f"run {run_id} has no tag 'owner' (its tags: team)" in missing.stderr
    assert "Traceback" not in too_long.stderr + bad_pair.stderr + bad_key.stderr + missing.stderr
    detail = shown(trainq, run_id)
    assert (detail["name"], detail["tags"]) == ("kept", {"team": "vision"})


def test_archived_runs_leave_the_list_until_asked_for_or_unarchived(
    trainq: Trainq, repository: Repository
) -> None:
    kept, archived = succeeded_run(repository).id, succeeded_run(repository).id
    queued = queued_run(repository).id

    result = trainq("runs", "archive", str(archived))
    refused = trainq("runs", "archive", str(queued))

    assert result.returncode == 0, result.stderr
    assert f"`trainq runs unarchive {archived}` brings it back" in result.stdout
    assert refused.returncode == 3
    assert f"run {queued} is queued: cancel it first (`trainq cancel {queued}`)" in refused.stderr
    shown_by_default = listed(trainq)
    assert archived not in shown_by_default and {kept, queued} <= set(shown_by_default)
    assert listed(trainq, "--archived") == [archived]
    assert repository.get_run(archived).archived_at is not None
    assert trainq("runs", "unarchive", str(archived)).returncode == 0
    assert archived in listed(trainq)


def test_delete_refuses_without_a_terminal_or_yes_and_then_frees_the_runs_space(
    trainq: Trainq, repository: Repository
) -> None:
    run_id = succeeded_run(repository).id
    queued = queued_run(repository).id

    unasked = trainq("runs", "delete", str(run_id))
    running = trainq("runs", "delete", str(queued), "--yes")
    deleted = trainq("runs", "delete", str(run_id), "--yes", "--json")

    assert unasked.returncode == 2
    assert f"error: runs delete {run_id}: deleting cannot be undone" in unasked.stderr
    assert "pass --yes" in unasked.stderr
    assert running.returncode == 3 and "cancel it first" in running.stderr
    assert deleted.returncode == 0, deleted.stderr
    removal = json.loads(deleted.stdout)
    assert removal["deleted_run_ids"] == [run_id]
    assert removal["metric_bytes"] == 1000 * 4 * 2  # 1,000 steps of float32 loss and accuracy
    assert removal["vacuum_freed_bytes"] is None
    gone = trainq("runs", "show", str(run_id))
    assert gone.returncode == 4 and f"no run with id {run_id}" in gone.stderr
    vacuumed = trainq("db", "vacuum")
    assert vacuumed.returncode == 0 and "VACUUM: the SQLite file shrank by" in vacuumed.stdout


def confirm_in_terminal(home: Path, answer: str, *args: str) -> str:
    """Run `trainq ARGS` on a pty, answer its question with ``answer``; what it showed."""
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "api_cli", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env=embedded_env(home) | {"TERM": "dumb"},
    )
    os.close(child)
    chunks: list[bytes] = []
    answered = False
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
        if not answered and b"[y/N]" in b"".join(chunks):
            os.write(main, answer.encode() + b"\n")
            answered = True
    process.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode()


def test_delete_on_a_terminal_asks_first_and_no_keeps_the_run(
    home: Path, trainq: Trainq, repository: Repository
) -> None:
    first, second = succeeded_run(repository).id, succeeded_run(repository).id

    declined = confirm_in_terminal(home, "n", "runs", "delete", str(first), str(second))
    accepted = confirm_in_terminal(home, "y", "runs", "delete", str(second))

    assert f"delete runs {first}, {second} for good (15.6 KiB of metrics and weights" in declined
    assert "nothing was deleted" in declined
    assert f"deleted run {second}: 7.8 KiB of metrics and weights" in accepted
    assert "`trainq db vacuum`" in accepted  # how SQLite gives the space back
    assert first in listed(trainq) and second not in listed(trainq)


def finished_sweep(repository: Repository) -> tuple[int, list[int]]:
    """A sweep of two trials that both ended."""
    from worker.sweeps import parse_spec

    spec = parse_spec({"seed": 3, "run_cap": 2, "parameters": {"lr": {"values": [0.1, 0.2]}}})
    trial = PlannedTrial(params={"lr": 0.1}, config={"steps": 10}, seed=3, queue="train")
    sweep = repository.create_sweep(
        name="grid", spec=spec.to_json(), trials=[trial] * 2, max_concurrent=2, max_attempts=1
    )
    runs = repository.fill_slots(sweep.id)
    for run in runs:
        claimed = repository.claim_run(run.id, owner="t:1:a", worker_host="t", lease_ttl_s=60)
        assert claimed is not None
        repository.finish_run(run.id, claimed.attempt, RunStatus.SUCCEEDED)
    return sweep.id, [run.id for run in runs]


def test_a_sweep_is_archived_and_deleted_with_its_trials(
    trainq: Trainq, repository: Repository
) -> None:
    sweep_id, trials = finished_sweep(repository)

    archived = trainq("sweep", "archive", str(sweep_id))

    assert archived.returncode == 0, archived.stderr
    assert not set(trials) & set(listed(trainq))
    assert set(trials) <= set(listed(trainq, "--archived"))
    sweeps = json.loads(trainq("sweep", "list", "--archived", "--json").stdout)
    assert [sweep["id"] for sweep in sweeps] == [sweep_id]
    trial = trainq("runs", "delete", str(trials[0]), "--yes")
    assert trial.returncode == 3 and f"`trainq sweep delete {sweep_id}`" in trial.stderr
    deleted = trainq("sweep", "delete", str(sweep_id), "--yes", "--json")
    assert deleted.returncode == 0, deleted.stderr
    removal = json.loads(deleted.stdout)
    assert (removal["deleted_sweep_ids"], removal["deleted_run_ids"]) == ([sweep_id], trials)
    assert repository.list_sweeps(archived=None) == []


def test_the_python_api_manages_runs_as_the_cli_does(home: Path) -> None:
    with sdk.Client(sdk.Settings.from_env(embedded_env(home))) as client:
        run_id = succeeded_run(client.repository).id

        client.rename_run(run_id, "from python")
        client.set_note(run_id, "a note")
        client.tag_run(run_id, {"team": "vision", "stage": "draft"})
        run = client.untag_run(run_id, ["stage"])
        assert (run.name, run.note, run.tags) == ("from python", "a note", {"team": "vision"})
        client.archive_runs([run_id])
        assert run_id not in [r.id for r in client.runs()]
        assert [r.id for r in client.runs(archived=True, name="from python")] == [run_id]
        with pytest.raises(sdk.InvalidStateError, match="cancel it first"):
            client.delete_runs([queued_run(client.repository).id])
        preview = client.delete_runs([run_id], dry_run=True)
        removed = client.delete_runs([run_id])
        assert removed.freed_bytes == preview.freed_bytes == 1000 * 4 * 2
        assert client.reclaim_space() is not None  # SQLite: VACUUM ran
        with pytest.raises(sdk.RunNotFoundError):
            client.run(run_id)
