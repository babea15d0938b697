"""The progress line fits the terminal without cutting a number; logs get plain lines."""

from __future__ import annotations

import re

import pytest

from api_cli.progress import PLAIN_EVERY_S, _PlainLines
from api_cli.progress_line import Snapshot, plain_line, progress_line

FINISHED = Snapshot(
    label="run 12",
    status="succeeded",
    steps_done=20_000,
    steps_total=20_000,
    loss=1.546512,
    accuracy=0.66412,
    steps_per_s=5974.2,
    rate_label="steps/s wall",
    elapsed_s=3671,
    final=True,
)
RUNNING = Snapshot(
    label="run 12",
    status="running",
    steps_done=9_000,
    steps_total=20_000,
    loss=1.3788,
    accuracy=0.7056,
    steps_per_s=1709.4,
    elapsed_s=64,
    eta_s=6.4,
)


RUNNING_NUMBERS = {"12", "9,000", "20,000", "1.3788", "0.7056", "1,709", "0:06"}


def numbers(text: str) -> list[str]:
    return re.findall(r"[\d,.:]*\d", text)


@pytest.mark.parametrize("width", [120, 80, 60, 40])
def test_a_finished_20000_step_run_fits_the_width_with_every_number_whole(width: int) -> None:
    line = progress_line(FINISHED, width)
    assert len(line) <= width and "…" not in line
    assert "20,000/20,000" in line
    if width >= 50:
        assert "loss 1.5465" in line and "0.6641" in line


def test_an_80_column_terminal_shows_the_bar_the_count_metrics_speed_and_eta() -> None:
    line = progress_line(RUNNING, 80)
    assert len(line) <= 80
    assert "━" in line and "9,000/20,000" in line and "loss 1.3788" in line
    assert "1,709" in line and "eta 0:06" in line


def test_narrow_terminals_drop_the_bar_then_the_eta_before_any_metric() -> None:
    at_50 = progress_line(RUNNING, 50)
    assert "━" not in at_50 and "─" not in at_50 and "loss 1.3788" in at_50
    at_40 = progress_line(RUNNING, 40)
    assert "eta" not in at_40 and "9,000/20,000" in at_40
    assert all(number in RUNNING_NUMBERS for number in numbers(at_40))


def test_a_line_too_wide_even_when_bare_keeps_its_numbers_whole() -> None:
    assert progress_line(FINISHED, 8) == "20,000/20,000"


def test_before_the_first_steps_the_line_says_what_is_happening() -> None:
    starting = Snapshot(
        label="run 3",
        status="running",
        steps_total=10_000,
        phase="loading TensorFlow and the data, compiling the step",
        phase_short="starting",
    )
    assert progress_line(starting, 80) == (
        "run 3 running: loading TensorFlow and the data, compiling the step"
    )
    assert progress_line(starting, 30) == "run 3: starting"
    assert "0/10,000" not in progress_line(starting, 80)


def test_a_plain_line_for_logs_has_full_labels_and_a_percentage() -> None:
    assert plain_line(RUNNING) == (
        "run 12 running  9,000/20,000 steps (45%)  loss 1.3788  accuracy 0.7056  "
        "1,709 steps/s  elapsed 1:04  ETA 0:06"
    )


def test_without_a_terminal_a_line_comes_every_tenth_of_the_steps_or_every_10_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = [0.0]
    plain = _PlainLines(clock=lambda: now[0])
    for step in range(0, 1001, 25):  # a poll every 25 steps, 0.1 s apart
        now[0] += 0.1
        plain.show(Snapshot(label="run 1", status="running", steps_done=step, steps_total=1000))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[3] for line in lines[1:]] == [
        f"{n:,}/1,000" for n in range(100, 1001, 100)
    ]
    now[0] += PLAIN_EVERY_S
    plain.show(Snapshot(label="run 1", status="running", steps_done=1000, steps_total=1000))
    assert len(capsys.readouterr().err.splitlines()) == 1


@pytest.mark.parametrize("columns", [80, 120])
def test_the_live_line_leaves_room_for_the_echo_of_ctrl_c(columns: int) -> None:
    # A line as wide as the terminal left the cursor past its last column: the terminal's "^C"
    # wrapped to a new line there, and the last redraw printed the line again below it.
    import io

    from api_cli.output import VisibleConsole
    from api_cli.progress import ECHO_ROOM, _LiveLine

    screen = io.StringIO()
    console = VisibleConsole(file=screen, force_terminal=True, width=columns, color_system=None)
    with _LiveLine(console) as show:
        for snapshot in (RUNNING, FINISHED):
            show(snapshot)
    drawn = [
        line
        for line in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue()))
        if line.strip()
    ]
    # The bar takes what the rest leaves: every line ends ECHO_ROOM short of the edge.
    assert drawn and {len(line) for line in drawn} == {columns - ECHO_ROOM}
