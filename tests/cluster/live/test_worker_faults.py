"""Workers lost under a running job, for real: `docker kill` and a graceful `docker stop` of the
worker container that trains it, and scaling the worker service up and down with runs in flight."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from storage.records import RunStatus
from tests.cluster.compose import worker_stop_settings
from tests.cluster.live.live import (
    LiveCluster,
    assert_steps_exactly,
    logs,
    poll,
    report,
    run,
    wait_terminal,
)

pytestmark = pytest.mark.compose

CHUNK_STEPS = 500
#: Long enough to be stopped mid-run with a few checkpoints behind it (a few seconds of training).
LONG_RUN = (
    "--steps",
    "60000",
    "--chunk-steps",
    str(CHUNK_STEPS),
    "--checkpoint-every",
    "5000",
    "--lr",
    "0.05",
    "--momentum",
    "0.5",
)


def resumed_from(container: str, run_id: int) -> int:
    """The checkpoint step a worker container says it resumed run ``run_id`` from."""
    found = re.findall(rf"run {run_id}: resuming from checkpoint at step (\d+)", logs(container))
    assert found, f"worker {container[:12]} never resumed run {run_id}"
    return int(found[-1])


def _attempts_of(live: LiveCluster, run_id: int) -> str:
    """The run's attempts, for an assertion message that says what happened to it."""
    return "\n".join(repr(attempt) for attempt in live.repository().list_attempts(run_id))


def embedded_weights(tmp_path: Path, *options: str) -> dict[str, np.ndarray]:
    """W and b of the same run trained embedded (no broker, SQLite) on the host."""
    env = {
        "PATH": "/usr/bin:/bin",
        "TRAINQ_HOME": str(tmp_path / "embedded"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    for args in (("train", *options), ("export", "1", "--out", str(tmp_path / "w.npz"))):
        result = run([sys.executable, "-m", "api_cli", *args], env=env, check=False, timeout_s=600)
        assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "w.npz") as arrays:
        return {name: arrays[name] for name in ("W", "b")}


def test_a_killed_worker_container_is_replaced_by_the_other_from_the_newest_checkpoint(
    live: LiveCluster, tmp_path: Path
) -> None:
    options = (*LONG_RUN, "--seed", "11")
    run_id = live.submit(*options)
    repository = live.repository()
    poll(
        lambda: repository.get_run(run_id).steps_done >= 12_000,
        timeout_s=180,
        what="run reaches step 12,000",
    )
    victim = live.worker_of(run_id)
    before = repository.get_run(run_id)
    assert before.status is RunStatus.RUNNING, before
    run(["docker", "kill", victim])
    killed = time.monotonic()
    at_kill = repository.get_run(run_id)
    # On a loaded machine the 6 s lease can lapse before `docker kill` returns, and the reconciler
    # puts the run back to QUEUED first (CI saw this once). Either way no other attempt may have
    # started yet, so the newest checkpoint is the killed attempt's.
    assert at_kill.attempt == before.attempt, _attempts_of(live, run_id)
    assert at_kill.status in (RunStatus.RUNNING, RunStatus.QUEUED), _attempts_of(live, run_id)
    assert at_kill.steps_done < 60_000
    newest_checkpoint = max(info.step for info in repository.list_checkpoints(run_id))

    claimed_s = poll(
        lambda: live.repository().get_run(run_id).attempt > at_kill.attempt,
        timeout_s=120,
        what="another worker claims the run",
    )
    final = wait_terminal(live, [run_id])[0]
    assert final.status is RunStatus.SUCCEEDED, final.error
    successor = live.worker_of(run_id)
    assert successor != victim
    assert resumed_from(successor, run_id) == newest_checkpoint
    assert_steps_exactly(live, run_id, 60_000)
    report(
        "docker kill of the worker training a run (lease 6 s, reconciler every 2 s)",
        recovery_s=round(claimed_s, 1),
        steps_at_kill=at_kill.steps_done,
        resumed_from=newest_checkpoint,
        steps_recomputed=at_kill.steps_done - newest_checkpoint,
        since_kill_s=round(time.monotonic() - killed, 1),
    )

    cluster_weights = live.repository().latest_checkpoint(run_id)
    assert cluster_weights is not None
    reference = embedded_weights(tmp_path, *options)
    for name in ("W", "b"):
        assert np.array_equal(cluster_weights.arrays[name], reference[name]), name


def test_a_gracefully_stopped_worker_hands_its_run_over_within_5_s_and_one_chunk(
    live: LiveCluster,
) -> None:
    # Long enough (200,000 steps) that the run cannot end by itself while the worker stops.
    options = ("--steps", "200000", *LONG_RUN[2:])
    run_id = live.submit(*options, "--seed", "12")
    repository = live.repository()
    poll(
        lambda: repository.get_run(run_id).steps_done >= 10_000,
        timeout_s=180,
        what="run reaches step 10,000",
    )
    victim = live.worker_of(run_id)
    before = repository.get_run(run_id)
    grace_s = int(worker_stop_settings().grace_s)
    stopping = subprocess.Popen(
        ["docker", "stop", "--time", str(grace_s), victim],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sigterm = time.monotonic()
    stopped_after_s: list[float] = []  # when `docker stop` returned: the container is gone

    def note_stopped() -> bool:
        """Whether the container is gone, noting when it was first seen gone."""
        if not stopped_after_s and stopping.poll() is not None:
            stopped_after_s.append(time.monotonic() - sigterm)
        return bool(stopped_after_s)

    try:
        highest = [before.steps_done]

        def training_elsewhere() -> bool:
            note_stopped()
            # A hand-back gives its attempt back, so the successor is told apart by its host.
            record = live.repository().get_run(run_id)
            if record.worker_host == before.worker_host:
                assert not record.status.terminal, "the stopped worker finished the run itself"
                highest[0] = max(highest[0], record.steps_done)
                return False
            return record.status.terminal or record.steps_done > highest[0]

        handover_s = poll(training_elsewhere, timeout_s=180, what="the run trains elsewhere")
        poll(
            note_stopped,
            timeout_s=grace_s + 30,
            what="docker stop returns",
            every_s=0.05,
        )
    finally:
        stopping.wait(timeout=grace_s + 30)
    final = wait_terminal(live, [run_id])[0]
    assert final.status is RunStatus.SUCCEEDED, final.error
    assert_steps_exactly(live, run_id, 200_000)
    successor = live.worker_of(run_id)
    # Where the stopped worker's job stopped, from its own log: the polls above can miss the
    # chunks it trained between the last poll and the hand-back.
    handed_back = re.findall(rf"run {run_id}: handed back at step (\d+)", logs(victim))
    assert handed_back, f"worker {victim[:12]} never handed run {run_id} back"
    recomputed = int(handed_back[-1]) - resumed_from(successor, run_id)
    report(
        "docker stop (graceful) of the worker training a run",
        sigterm_to_training_elsewhere_s=round(handover_s, 1),
        container_stopped_after_s=round(stopped_after_s[0], 1),
        run_finished_elsewhere_after_s=round(time.monotonic() - sigterm, 1),
        steps_stored_before_handover=int(handed_back[-1]),
        steps_recomputed=recomputed,
    )
    assert successor != victim
    assert handover_s <= 5.0
    assert recomputed == 0  # the hand-back checkpoints where the job stopped


def test_scaling_workers_to_4_and_back_to_1_with_runs_in_flight_loses_none(
    live: LiveCluster,
) -> None:
    run_ids = [live.submit(*LONG_RUN, "--seed", str(20 + i)) for i in range(6)]
    start = time.monotonic()
    live.up(workers=4)
    live.up(workers=1)
    finals = wait_terminal(live, run_ids, timeout_s=600)
    assert [r.status for r in finals] == [RunStatus.SUCCEEDED] * 6, [r.error for r in finals]
    for run_id in run_ids:
        assert_steps_exactly(live, run_id, 60_000)
    report(
        "6 runs x 60,000 steps while scaling worker=2 -> 4 -> 1",
        wall_s=round(time.monotonic() - start, 1),
        attempts=[r.attempt for r in finals],
    )
