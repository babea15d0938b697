"""Tables fit an 80-column terminal without cutting a value, and piped output is whole."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from api_cli.views import HOW_IT_RAN, SAID_BY_THE_DATA_ROW
from storage import Database, Repository, Settings
from tests.cli.conftest import Trainq, embedded_env, trainq_in
from tests.cli.seeding import queued_run, running_run, succeeded_run
from worker.config import TrainConfig


@pytest.fixture(scope="module")
def repository(home: Path) -> Repository:
    settings = Settings.from_env(embedded_env(home))
    database = Database(settings.database_url)
    database.ensure_schema(auto_upgrade=True)
    return Repository(database)


@pytest.fixture(scope="module")
def stored(repository: Repository) -> dict[str, int]:
    """Three finished runs (one with a long name and tags), a running one, a queued one."""
    runs = {"first": succeeded_run(repository).id}
    runs["long"] = succeeded_run(
        repository,
        name="a-rather-long-run-name-for-a-sweep-trial",
        tags={"team": "vision", "sweep": "lr-momentum-grid", "owner": "someone"},
    ).id
    runs["third"] = succeeded_run(repository, steps=20_000).id
    runs["running"] = running_run(repository, 1500, 1.25, steps=20_000)
    runs["queued"] = queued_run(repository).id
    return runs


def in_terminal(home: Path, *args: str, columns: int = 80) -> str:
    """What `trainq ARGS` shows on a real terminal (a pty) ``columns`` wide."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = embedded_env(home)
    env.pop("COLUMNS", None)
    env["TERM"] = "xterm"
    process = subprocess.Popen(
        [sys.executable, "-m", "api_cli", *args], stdin=child, stdout=child, stderr=child, env=env
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode()


def test_runs_list_at_80_columns_keeps_statuses_steps_and_dates_whole(
    home: Path, stored: dict[str, int]
) -> None:
    import re

    screen = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", in_terminal(home, "runs", "list"))
    lines = screen.splitlines()
    assert all(len(line) <= 80 for line in lines), screen
    first = next(line for line in lines if line.startswith(f"{stored['first']} "))
    assert "succeeded" in first and "1000" in first and re.search(r"\d\d-\d\d \d\d:\d\d", first)
    assert "…" not in screen


def test_runs_list_shows_the_latest_loss_and_accuracy_of_a_running_run(
    trainq: Trainq, stored: dict[str, int]
) -> None:
    lines = trainq("runs", "list", "--format", "csv").stdout.splitlines()
    running = next(line for line in lines if line.startswith(f"{stored['running']},"))
    assert ",running,1500/20000,1,1.25,0.5," in running


def test_piped_tables_are_never_cut(trainq: Trainq, stored: dict[str, int]) -> None:
    listing = trainq("runs", "list").stdout
    assert "a-rather-long-run-name-for-a-sweep-trial" in listing
    assert "sweep=lr-momentum-grid, owner=someone" in listing


def test_piped_tables_end_their_lines_at_their_last_character(
    trainq: Trainq, stored: dict[str, int]
) -> None:
    # Padded to the widest row (a long summary value), `runs show | cat` at 80 columns showed
    # a blank line after every row.
    for args in (("runs", "list"), ("runs", "show", str(stored["long"]))):
        lines = trainq(*args).stdout.splitlines()
        assert len(lines) > 3 and not [line for line in lines if line != line.rstrip()], args


def test_runs_show_piped_puts_every_hyperparameter_on_its_own_line_in_config_order(
    trainq: Trainq, stored: dict[str, int]
) -> None:
    shown = trainq("runs", "show", str(stored["first"])).stdout
    names = [line.split()[0] for line in shown.splitlines() if line.startswith("  ")]
    # How it ran (xla) is shown with the device; the dataset's label in the data row.
    hidden = (*HOW_IT_RAN, *SAID_BY_THE_DATA_ROW)
    assert names == [name for name in TrainConfig.model_fields if name not in hidden]
    grep = subprocess.run(
        ["grep", "learning_rate"], input=shown, capture_output=True, text=True, check=True
    )
    assert grep.stdout.split() == ["learning_rate", "0.01"]


def test_runs_show_json_keeps_the_config_field_order(
    trainq: Trainq, stored: dict[str, int]
) -> None:
    import json

    shown = json.loads(trainq("runs", "show", str(stored["first"]), "--format", "json").stdout)
    # A run trained alone is stored without the pack fields (TrainConfig's serializer).
    alone = [name for name in TrainConfig.model_fields if name not in ("pack", "pack_narrows")]
    assert list(shown["config"]) == alone
    assert shown["summary"]["final_window_steps"] == 500


def test_an_empty_filter_says_no_run_matches_and_how_many_are_stored(
    trainq: Trainq, stored: dict[str, int]
) -> None:
    result = trainq("runs", "list", "--status", "failed")
    assert result.returncode == 0
    assert "no runs yet" not in result.stdout
    assert "no training run matches --status failed (5 training runs stored" in result.stdout


def test_an_empty_database_says_how_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api_cli", "runs", "list", "--status", "queued"],
        env=embedded_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert "no runs yet: start one with `trainq train`" in result.stdout


def test_a_queued_run_shows_its_place_in_its_queue(trainq: Trainq, stored: dict[str, int]) -> None:
    shown = trainq("runs", "show", str(stored["queued"])).stdout
    assert "1st in queue 'train'" in shown


def test_runs_watch_reports_a_finished_run_with_its_final_numbers_and_both_speeds(
    trainq: Trainq, stored: dict[str, int]
) -> None:
    result = trainq("runs", "watch", str(stored["third"]))
    assert result.returncode == 0, result.stderr
    assert f"run {stored['third']} succeeded: 20,000 steps on CPU:0 in 40.0 s" in result.stdout
    assert "final loss 0.7500, accuracy 0.5000 (mean of the last 500 steps)" in result.stdout
    assert "2,000 steps/s training only, 500 steps/s wall" in result.stdout
    assert "loss 0.7500" in result.stderr and "500 steps/s wall" in result.stderr


def test_a_timeout_in_embedded_mode_is_refused_before_anything_is_stored(trainq: Trainq) -> None:
    import json

    before = json.loads(trainq("runs", "list", "--format", "json").stdout)
    result = trainq("train", "--timeout", "5")
    assert result.returncode == 2
    assert json.loads(trainq("runs", "list", "--format", "json").stdout) == before
    assert "--timeout needs a cluster" in result.stderr and "Traceback" not in result.stderr


#: A name, tags and an error that would clear the screen, ring, reorder the line or break Rich's
#: markup if printed as they are.
HOSTILE_NAME = "evil\x1b[31mred\x07[/bold]\u202e"
HOSTILE_TAGS = {"ansi": "\x1b[2J", "csi": "\x9b2J"}
HOSTILE_ERROR = "diverged\x1b]0;owned\x07 at [red]step 3[/]"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """A home holding a run with a hostile name and tags, and a failed run with a hostile error."""
    from storage.records import RunStatus

    home = tmp_path_factory.mktemp("hostile-home")
    settings = Settings.from_env(embedded_env(home))
    database = Database(settings.database_url)
    database.ensure_schema(auto_upgrade=True)
    repository = Repository(database)
    named = succeeded_run(repository, name=HOSTILE_NAME, tags=HOSTILE_TAGS).id
    failed = running_run(repository, 100, 1.0)
    attempt = repository.get_run(failed).attempt
    repository.finish_run(failed, attempt, RunStatus.FAILED, error=HOSTILE_ERROR)
    database.dispose(close=True)
    return home, named, failed


def shown_raw(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list"),
        ("runs", "list", "--format", "csv"),
        ("runs", "show", "{named}"),
        ("runs", "show", "{named}", "--format", "csv"),
        ("runs", "show", "{failed}"),
        ("compare", "{named}", "{failed}"),
        ("compare", "{named}", "{failed}", "--format", "csv"),
        ("plot", "{named}"),
    ],
    ids=" ".join,
)
def test_control_characters_in_names_tags_and_errors_are_printed_as_visible_escapes(
    hostile: tuple[Path, int, int], args: tuple[str, ...]
) -> None:
    home, named, failed = hostile
    command = [arg.format(named=named, failed=failed) for arg in args]
    printed = shown_raw(trainq_in(home, *command))
    assert not {"\x1b", "\x07", "\x9b", "\u202e"} & set(printed)
    if "{named}" in args:
        assert "evil\\x1b[31mred\\x07[/bold]\\u202e" in printed
    if args[:2] == ("runs", "list") or ("show" in args and "{named}" in args):
        # A CSV cell holding the tags is compact JSON, escaped the JSON way.
        escaped = ("\\u001b[2J", "\\u009b2J") if "csv" in args else ("\\x1b[2J", "\\x9b2J")
        assert all(tag in printed for tag in escaped)
    if "{failed}" in args and "show" in args:
        assert "diverged\\x1b]0;owned\\x07 at [red]step 3[/]" in printed


def test_a_filter_that_matches_nothing_is_echoed_with_visible_escapes(
    hostile: tuple[Path, int, int],
) -> None:
    home, _, _ = hostile
    printed = shown_raw(trainq_in(home, "runs", "list", "--name", "\x1b[2J[/x]"))
    assert "no training run matches --name \\x1b[2J[/x] (2 training runs stored" in printed
    assert "\x1b" not in printed


def test_json_keeps_names_tags_and_errors_exact(hostile: tuple[Path, int, int]) -> None:
    home, named, failed = hostile
    runs = {
        run["id"]: run for run in json.loads(shown_raw(trainq_in(home, "runs", "list", "--json")))
    }
    assert runs[named]["name"] == HOSTILE_NAME and runs[named]["tags"] == HOSTILE_TAGS
    assert runs[failed]["error"] == HOSTILE_ERROR


def test_a_terminal_gets_the_escapes_as_text_never_the_control_characters(
    hostile: tuple[Path, int, int],
) -> None:
    home, _, _ = hostile
    shown = in_terminal(home, "runs", "list", columns=200)
    # Rich styles a terminal's output with escapes of its own; none of these is one of them.
    assert "\x1b[2J" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "ansi=\\x1b[2J" in shown and "evil\\x1b[31mred\\x07[/bold]" in shown
