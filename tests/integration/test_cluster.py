"""The queue end to end: real `trainq worker` processes, Redis and PostgreSQL."""

from __future__ import annotations

import json
import time
from importlib.util import find_spec

import numpy as np
import pytest
import redis
from kombu import Connection, Exchange, Producer

from api_cli.sdk import Client
from storage.records import RunStatus
from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster, WorkerProcess, wait_for
from worker.cluster.warm_up import TENSORFLOW_DEPENDENCIES

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def submit(cluster: Cluster, *options: str) -> int:
    result = cluster.trainq("train", "--no-wait", "--json", *options)
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["run_id"])


def assert_steps_exactly(cluster: Cluster, run_id: int, steps: int) -> None:
    rows = cluster.repository().read_metrics(run_id)
    assert [row.step for row in rows] == list(range(1, steps + 1))


def test_a_run_submitted_to_the_cluster_succeeds_with_one_metric_row_per_step(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker(worker_command())
    result = cluster.trainq(
        "train",
        "--steps",
        "2500",
        "--chunk-steps",
        "500",
        "--checkpoint-every",
        "1000",
        "--seed",
        "3",
        "--wait",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "succeeded"
    assert report["steps_done"] == 2500
    assert report["summary"]["final_accuracy"] > 0.3
    assert_steps_exactly(cluster, report["run_id"], 2500)
    steps = [info.step for info in cluster.repository().list_checkpoints(report["run_id"])]
    assert steps == [1000, 2000, 2500]
    # The worker's log says how the run ended, not only Celery's "succeeded in 4.6s: None".
    outcome = f"run {report['run_id']} (train) succeeded: 2,500 steps, attempt 1 in "
    assert poll_log(worker, outcome), worker.log()


def test_the_worker_main_process_never_imports_tensorflow(cluster: Cluster) -> None:
    from worker.cluster.celery_app import create_app

    cluster.start_worker(worker_command())
    run_id = submit(cluster, "--steps", "300", "--chunk-steps", "100", "--checkpoint-every", "100")
    assert wait_for(run_id, cluster.repository(), timeout_s=120).status is RunStatus.SUCCEEDED
    app = create_app(cluster.settings())
    replies = app.control.broadcast("trainq_main_process", reply=True, timeout=5)
    assert replies, "the worker did not answer the inspect command"
    for reply in replies:
        # TensorFlow's heavy dependencies that are installed, and the data set, are preloaded
        # for the job processes (worker.cluster.warm_up); TensorFlow itself is not.
        installed = [
            name for name in TENSORFLOW_DEPENDENCIES if find_spec(name.split(".")[0]) is not None
        ]
        assert "ml_dtypes" in installed
        assert list(reply.values()) == [
            {
                "tensorflow_loaded": False,
                "reconciler": True,
                "preloaded": installed,
                "training_data_preloaded": True,
            }
        ]


def test_two_workers_and_six_runs_train_each_run_exactly_once(cluster: Cluster) -> None:
    workers = [cluster.start_worker(worker_command()) for _ in range(2)]
    for worker in workers:
        worker.wait_warm()  # else the first worker warm could take all six short runs
    # All six are queued at once (one `submit_many`), so while one worker trains a run the
    # others wait on the queue and, with a prefetch of one, the idle worker must take one.
    # Six CLI submissions a second apart let one worker finish each short run before the next
    # arrived (CI saw [6, 0] once).
    with Client(cluster.settings()) as client:
        runs_queued = client.submit_many(
            [{"steps": 4000, "chunk_steps": 500, "seed": seed} for seed in range(6)]
        )
    run_ids = [run.id for run in runs_queued]
    repository = cluster.repository()
    runs = [wait_for(run_id, repository, timeout_s=300) for run_id in run_ids]
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 6
    assert [run.attempt for run in runs] == [1] * 6
    for run_id in run_ids:
        assert_steps_exactly(cluster, run_id, 4000)
    claims = [worker.log().count("claimed as attempt") for worker in workers]
    assert sum(claims) == 6
    assert all(count > 0 for count in claims), f"one worker did all the work: {claims}"


def test_a_killed_worker_is_replaced_and_the_run_resumes_from_its_newest_checkpoint(
    cluster: Cluster,
) -> None:
    options = (
        "--steps",
        "60000",
        "--chunk-steps",
        "500",
        "--checkpoint-every",
        "5000",
        "--seed",
        "11",
        "--lr",
        "0.05",
        "--momentum",
        "0.5",
    )
    first = cluster.start_worker(worker_command())
    run_id = submit(cluster, *options)
    repository = cluster.repository()
    deadline = time.monotonic() + 120
    while repository.get_run(run_id).steps_done < 12_000:
        assert time.monotonic() < deadline, "the run never reached step 12,000"
        time.sleep(0.01)
    first.kill()
    killed_at = repository.get_run(run_id)
    assert killed_at.status is RunStatus.RUNNING and killed_at.steps_done < 60_000
    newest_checkpoint = max(info.step for info in repository.list_checkpoints(run_id))

    second = cluster.start_worker(worker_command())
    resumed = wait_for(run_id, repository, timeout_s=240)
    assert resumed.status is RunStatus.SUCCEEDED, resumed.error
    assert resumed.attempt == 2
    lost, succeeded = repository.list_attempts(run_id)  # the history names both
    assert (lost.attempt, lost.outcome, succeeded.outcome) == (1, "lost", "succeeded")
    assert lost.steps_at_end is not None and lost.steps_at_end >= 12_000
    assert f"resuming from checkpoint at step {newest_checkpoint}" in second.log()
    assert_steps_exactly(cluster, run_id, 60_000)

    reference_id = submit(cluster, *options)
    assert wait_for(reference_id, repository, timeout_s=240).status is RunStatus.SUCCEEDED
    resumed_weights = repository.latest_checkpoint(run_id)
    reference_weights = repository.latest_checkpoint(reference_id)
    assert resumed_weights is not None and reference_weights is not None
    for name in ("W", "b"):
        assert np.array_equal(resumed_weights.arrays[name], reference_weights.arrays[name])


def test_cancelling_a_running_run_stops_it_and_a_queued_run_never_trains(cluster: Cluster) -> None:
    cluster.start_worker(worker_command())
    running = submit(
        cluster, "--steps", "2000000", "--chunk-steps", "1000", "--checkpoint-every", "100000"
    )
    queued = submit(cluster, "--steps", "1000")
    repository = cluster.repository()
    deadline = time.monotonic() + 120
    while repository.get_run(running).steps_done == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    result = cluster.trainq("cancel", str(running), str(queued))
    assert result.returncode == 0, result.stderr
    assert repository.get_run(queued).status is RunStatus.CANCELLED
    stopped = wait_for(running, repository, timeout_s=60)
    assert stopped.status is RunStatus.CANCELLED
    assert stopped.steps_done < 2_000_000
    time.sleep(1.5)  # the queued run's message reaches the worker, which must not train it
    never = repository.get_run(queued)
    assert never.status is RunStatus.CANCELLED and never.attempt == 0 and never.steps_done == 0
    assert repository.read_metrics(queued) == []


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (("--lr", "nan"), "--lr"),
        (("--lr", "-0.1"), "--lr"),
        (("--batch-size", "0"), "--batch-size"),
        (("--steps", "-1"), "--steps"),
    ],
)
def test_hostile_options_are_refused_and_nothing_is_queued(
    cluster: Cluster, options: tuple[str, ...], complaint: str
) -> None:
    result = cluster.trainq("train", *options)
    assert result.returncode == 2
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr
    assert cluster.repository().list_runs() == []
    broker = redis.Redis.from_url(cluster.broker_url)
    assert broker.llen("train") == 0


def test_an_unknown_run_id_is_a_clear_error(cluster: Cluster) -> None:
    for command in (("runs", "show", "999"), ("metrics", "999"), ("cancel", "999")):
        result = cluster.trainq(*command)
        assert result.returncode in (3, 4), (command, result.stderr)
        assert "999" in result.stderr and "Traceback" not in result.stderr


def test_malformed_messages_are_dropped_and_the_worker_keeps_running(cluster: Cluster) -> None:
    worker = cluster.start_worker(worker_command())
    broker = redis.Redis.from_url(cluster.broker_url)
    broker.lpush("train", b"this is not json")
    with Connection(cluster.broker_url) as connection:
        producer = Producer(
            connection, exchange=Exchange("train", type="direct"), routing_key="train"
        )
        # A pickle: refused by content type before anything is decoded.
        producer.publish(
            {"boom": 1}, serializer="pickle", headers={"task": "trainq.train_run", "id": "p1"}
        )
        # Well-formed Celery messages with a bad task name, a bad id, and a run that does not exist.
        for task, args in (
            ("trainq.nope", [1]),
            ("trainq.train_run", ["1; DROP"]),
            ("trainq.train_run", [424242]),
        ):
            producer.publish(
                [args, {}, {}],
                serializer="json",
                headers={
                    "task": task,
                    "id": f"m-{task}-{args}",
                    "lang": "py",
                    "argsrepr": repr(args),
                },
            )
    time.sleep(3)
    assert worker.alive(), worker.log()
    run_id = submit(cluster, "--steps", "200", "--chunk-steps", "100", "--checkpoint-every", "100")
    assert wait_for(run_id, cluster.repository(), timeout_s=120).status is RunStatus.SUCCEEDED
    log = worker.log()
    assert "424242" in log and "not a positive integer" in log
    assert worker.alive()


def test_a_run_whose_message_was_lost_is_published_again_by_the_reconciler(
    cluster: Cluster,
) -> None:
    from storage.records import JobKind
    from worker.config import TrainConfig

    repository = cluster.repository()
    config = TrainConfig(steps=300, chunk_steps=100, checkpoint_every_steps=100, seed=5)
    lost = repository.create_run(
        kind=JobKind.TRAIN,
        config=config.model_dump(mode="json"),
        seed=5,
        queue="train",
        max_attempts=3,
    )  # stored but never published: the CLI died, or Redis lost the message
    cluster.start_worker(worker_command())
    finished = wait_for(lost.id, repository, timeout_s=120)
    assert finished.status is RunStatus.SUCCEEDED
    assert_steps_exactly(cluster, lost.id, 300)


def test_a_run_that_keeps_losing_its_worker_fails_after_max_attempts(cluster: Cluster) -> None:
    repository = cluster.repository()
    run_id = submit(
        cluster,
        "--steps",
        "5000000",
        "--chunk-steps",
        "1000",
        "--checkpoint-every",
        "1000000",
        "--max-attempts",
        "2",
    )
    for attempt in (1, 2):
        worker = cluster.start_worker(worker_command())
        deadline = time.monotonic() + 120
        while (
            repository.get_run(run_id).attempt < attempt
            or repository.get_run(run_id).steps_done == 0
        ):
            assert time.monotonic() < deadline, f"attempt {attempt} never started"
            time.sleep(0.05)
        worker.kill()
    cluster.start_worker(worker_command())
    failed = wait_for(run_id, repository, timeout_s=60)
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None and "max_attempts=2" in failed.error
    history = repository.list_attempts(run_id)  # each SIGKILLed worker's attempt, closed lost
    assert [(a.attempt, a.outcome) for a in history] == [(1, "lost"), (2, "lost")]
    assert all(a.worker_host and a.ended_at for a in history)
    assert history[1].error == failed.error


def test_batch_evaluation_queues_one_job_per_run_and_stores_each_result(cluster: Cluster) -> None:
    cluster.start_worker(worker_command())
    options = ("--steps", "400", "--chunk-steps", "100", "--checkpoint-every", "200")
    run_ids = [
        submit(cluster, *options, "--seed", str(seed), "--tag", "sweep=a") for seed in (1, 2)
    ]
    other = submit(cluster, *options, "--seed", "3", "--tag", "sweep=b")
    repository = cluster.repository()
    for run_id in [*run_ids, other]:
        assert wait_for(run_id, repository, timeout_s=120).status is RunStatus.SUCCEEDED
    result = cluster.trainq("eval", "--all", "--tag", "sweep=a", "--wait", "--json")
    assert result.returncode == 0, result.stderr
    evaluations = json.loads(result.stdout)["evaluations"]
    assert sorted(e["run_id"] for e in evaluations) == sorted(run_ids)
    assert {e["checkpoint_step"] for e in evaluations} == {400}
    for run_id in run_ids:
        stored = repository.list_evaluations(run_id)
        assert len(stored) == 1
        assert 0.0 < stored[0].accuracy <= 1.0
    assert repository.list_evaluations(other) == []


def test_status_reports_the_database_the_broker_workers_and_queue_depths(cluster: Cluster) -> None:
    worker = cluster.start_worker(worker_command())
    result = cluster.trainq("status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == "cluster"
    assert report["database"]["ok"] and report["broker"]["ok"]
    assert any(name.startswith(worker.name) for name in report["workers"])
    assert set(report["broker"]["queue_depths"]) == {"train", "eval", "gpu"}
    consumers = report["broker"]["consumers"]
    assert any(name.startswith(worker.name) for name in consumers["train"])
    assert consumers["gpu"] == []


def test_status_says_which_service_is_down_and_exits_69(cluster: Cluster) -> None:
    cluster.extra_env["TRAINQ_BROKER_URL"] = "redis://127.0.0.1:1/0"
    result = cluster.trainq("status", "--json")
    assert result.returncode == 69
    report = json.loads(result.stdout)
    assert report["database"]["ok"] and not report["broker"]["ok"]
    refused = cluster.trainq("train", "--steps", "100")
    assert refused.returncode == 69
    assert "does not answer" in refused.stderr
    assert cluster.repository().list_runs() == []


def poll_log(worker: WorkerProcess, text: str, timeout_s: float = 10) -> bool:
    """Whether ``text`` shows up in the worker's log within ``timeout_s`` (logs are buffered)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in worker.log():
            return True
        time.sleep(0.1)
    return False
