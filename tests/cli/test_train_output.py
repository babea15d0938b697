"""What `trainq train` prints: phases, plain progress lines in logs, one set of final numbers."""

from __future__ import annotations

import re

import pytest

from tests.cli.conftest import Trainq

pytestmark = pytest.mark.slow


def test_a_train_logged_to_a_file_prints_plain_progress_that_ends_on_the_summary_numbers(
    trainq: Trainq,
) -> None:
    # Long enough for several reads of the run on a fast CPU too: until its first steps the run is
    # read every 0.5 s, and 3,000 steps could end within two reads (only 2 lines, seen in CI).
    result = trainq(
        "train", "--steps", "10000", "--chunk-steps", "100", "--checkpoint-every", "2500"
    )
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("run ")]
    # Before the first chunk the line says what is happening (whether a poll lands in that window
    # depends on timing; the phase wording itself is tested in test_progress_line), never 0/N.
    assert not any(re.search(r"\b0/10,000 steps", line) for line in progress), progress
    steps = [line for line in progress if re.search(r"/10,000 steps \(\d+%\)", line)]
    assert len(steps) >= 3 and "10,000/10,000 steps (100%)" in steps[-1]
    final = re.search(r"loss (\d\.\d{4})  accuracy (\d\.\d{4})  ([\d,]+) steps/s wall", steps[-1])
    assert final is not None, steps[-1]
    loss, accuracy, wall = final.groups()
    assert f"final loss {loss}, accuracy {accuracy} (mean of the last 500 steps)" in result.stdout
    assert f"{wall} steps/s wall (set-up included)" in result.stdout
    assert re.search(r"[\d,]+ steps/s training only", result.stdout)
