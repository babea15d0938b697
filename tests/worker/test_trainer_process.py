"""A trainer process trains exactly as ``train`` does here, and says so when it cannot.

One fresh interpreter (``PROBE``) forks a real trainer process, as ``trainq train`` does, trains
through it, then imports TensorFlow itself and trains the same configs in-process: the two must
agree to the bit. It also checks what crosses the socket besides numbers: a stop asked by the
job, an error raised by the job's callback (the trainer process stays usable), an error raised
by ``train`` (its type kept, with the trainer process's traceback as a note), and the trainer
process killed mid-call.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.conftest import python_in
from worker.training import trainer_process

PROBE = """
import json, os, signal, sys
from worker.training import trainer_process

trainer_process.fork_early()
trainer = trainer_process.started()
assert trainer is not None

from worker.config import TrainConfig
from worker.data import load_fashion_mnist

data = load_fashion_mnist()
full = TrainConfig(steps=1200, seed=7, chunk_steps=500, checkpoint_every_steps=500)
full = full.resolved(xla=False)
out = {}

def chunks_of(call, config, **callbacks):
    reports = []
    def on_chunk(report):
        reports.append(report)
        if callbacks.get("on_chunk"):
            callbacks["on_chunk"](report)
    result = call(config, data, on_chunk=on_chunk, should_stop=callbacks.get("should_stop"))
    return result, reports

def summary(result, reports):
    return {
        "completed": result.completed,
        "step": result.state.step,
        "arrays": {k: v.tobytes().hex() for k, v in sorted(result.state.arrays.items())},
        "read_only": not any(v.flags.writeable for v in result.state.arrays.values()),
        "chunks": [(r.first_step, r.loss.tobytes().hex(), r.accuracy.tobytes().hex(),
                    r.state.step if r.state is not None else None) for r in reports],
        "tensorflow_version": result.tensorflow_version,
    }

def stop_after_first(*_):
    return True

out["remote"] = summary(*chunks_of(trainer.train, full))
out["remote_stopped"] = summary(*chunks_of(trainer.train, full, should_stop=stop_after_first))
out["traces_remote"] = trainer.traces_so_far()

def refuse(report):
    if report.first_step > 1:
        raise ValueError("the job's callback refused chunk " + str(report.first_step))
try:
    chunks_of(trainer.train, full, on_chunk=refuse)
except ValueError as error:
    out["callback_error"] = str(error)
short = full.model_copy(update={"steps": 100})
out["after_callback_error"] = summary(*chunks_of(trainer.train, short))

diverging = full.model_copy(update={"learning_rate": 1000.0, "l2": 1.0})  # unstable
try:
    trainer.train(diverging, data)
except Exception as error:
    out["divergence"] = [type(error).__name__, str(error), getattr(error, "__notes__", [])]

out["tensorflow_here_before"] = "tensorflow" in sys.modules
from worker.training.loop import train
out["local"] = summary(*chunks_of(train, full))
out["local_stopped"] = summary(*chunks_of(train, full, should_stop=stop_after_first))

long = full.model_copy(update={"steps": 200_000})
def kill_it(report):
    os.kill(trainer.pid, signal.SIGKILL)
try:
    chunks_of(trainer.train, long, on_chunk=kill_it)
except Exception as error:
    out["killed"] = [type(error).__name__, str(error)]
print(json.dumps(out))
os._exit(0)
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("trainer-home")
    result = python_in(home, "-c", PROBE)
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return answer


def test_a_run_trained_by_the_trainer_process_is_bit_identical_to_one_trained_here(
    probe: dict[str, Any],
) -> None:
    assert not probe["tensorflow_here_before"]  # the job's process never imported it
    remote, local = probe["remote"], probe["local"]
    assert remote["completed"] and remote["step"] == 1200
    assert remote["arrays"] == local["arrays"]
    assert remote["chunks"] == local["chunks"]  # every step's loss and accuracy, every state
    assert [chunk[0] for chunk in remote["chunks"]] == [1, 501, 1001]
    assert [chunk[3] for chunk in remote["chunks"]] == [500, 1000, 1200]
    assert remote["read_only"]  # as train's own arrays are
    assert probe["traces_remote"] >= 1
    assert remote["tensorflow_version"] == local["tensorflow_version"] != ""


def test_a_stop_asked_by_the_job_ends_the_call_where_it_would_end_here(
    probe: dict[str, Any],
) -> None:
    stopped = probe["remote_stopped"]
    assert not stopped["completed"] and stopped["step"] == 500
    assert stopped == probe["local_stopped"]


def test_an_error_in_the_jobs_callback_reaches_the_job_and_the_trainer_trains_on(
    probe: dict[str, Any],
) -> None:
    assert probe["callback_error"] == "the job's callback refused chunk 501"
    after = probe["after_callback_error"]
    assert after["completed"] and after["step"] == 100


def test_an_error_of_train_keeps_its_type_and_the_trainer_process_traceback(
    probe: dict[str, Any],
) -> None:
    name, message, notes = probe["divergence"]
    assert name == "DivergenceError"
    assert "lower the learning rate (--lr, now 1000)" in message, message
    assert notes and notes[0].startswith("in the trainer process:")
    assert "worker/training/loop.py" in notes[0]


def test_a_killed_trainer_process_is_said_as_such(probe: dict[str, Any]) -> None:
    assert probe["killed"] == [
        "TrainerProcessLostError",
        "the trainer process was killed by SIGKILL",
    ]


@pytest.mark.parametrize(
    ("args", "trains"),
    [
        (["train"], True),
        (["--debug", "train", "--steps", "10"], True),
        (["train", "--help"], False),
        (["train", "-h"], False),
        (["resume", "7"], True),
        (["runs", "list"], False),
        (["sweep", "run", "train"], False),
        ([], False),
    ],
)
def test_only_trainq_train_forks_a_trainer_process(args: list[str], trains: bool) -> None:
    from api_cli.entry import trains_here

    assert trains_here(args) is trains


def test_no_trainer_process_is_forked_beside_other_threads() -> None:
    # This test process has threads or TensorFlow loaded (or both, by now): a fork would copy
    # locks held by threads it does not copy.
    import threading

    started = threading.Event()
    waiter = threading.Thread(target=started.wait, daemon=True)
    waiter.start()
    try:
        assert not trainer_process._can_fork()
    finally:
        started.set()
        waiter.join()
