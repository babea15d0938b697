"""One bad item in a queue list never stops a worker: it is dropped (logged once, body unlogged),
nothing is left in kombu's ``unacked`` hash, and the next normal run finishes.

Every item is pushed straight onto the Redis list, as anyone with access to the broker could.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from storage.records import RunStatus
from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster, WorkerProcess, wait_for
from tests.integration.test_cluster import submit
from worker.queues import TRAIN_QUEUE

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

DROPPED = "dropped a broker item"
#: Put in bodies and arguments: it must never show up in a log.
BODY_MARKER = "body-marker-5f3a9c"
MIB = 1024 * 1024

Push = Callable[[Cluster, "redis.Redis[bytes]"], None]


def envelope(body: str, headers: dict[str, object] | None = None) -> bytes:
    """A kombu queue item in the shape kombu's Redis transport stores."""
    return json.dumps(
        {
            "body": body,
            "content-type": "application/json",
            "content-encoding": "utf-8",
            "headers": headers or {"task": "trainq.train_run", "id": "x"},
            "properties": {
                "body_encoding": "base64",
                "delivery_tag": "t1",
                "delivery_info": {"exchange": "train", "routing_key": "train"},
            },
        }
    ).encode()


def main_process_memory_mib(worker: WorkerProcess, field: str = "VmRSS") -> float:
    """Resident memory (``VmHWM``: its peak) of the worker's main process, which reads Redis."""
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024


def wait_for_log(worker: WorkerProcess, text: str, count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while worker.log().count(text) < count:
        assert worker.alive(), f"the worker died:\n{worker.log()[-4000:]}"
        assert time.monotonic() < deadline, (
            f"{text!r} not logged {count} times:\n{worker.log()[-4000:]}"
        )
        time.sleep(0.1)


def assert_nothing_held(broker: redis.Redis[bytes]) -> None:
    """No message waits in the queue, and none holds a prefetch slot in kombu's unacked hash."""
    assert broker.llen(TRAIN_QUEUE) == 0
    assert broker.hlen("unacked") == 0, broker.hkeys("unacked")
    assert broker.zcard("unacked_index") == 0


def assert_dropped_and_worker_carries_on(
    cluster: Cluster, push: Push, reasons: list[str]
) -> WorkerProcess:
    """Push bad item(s), then check each is dropped once and a normal run still finishes."""
    worker = cluster.start_worker(worker_command())
    broker = redis.Redis.from_url(cluster.broker_url)
    push(cluster, broker)
    wait_for_log(worker, DROPPED, len(reasons))
    time.sleep(1)  # a second report, or a late crash, would show by now
    log = worker.log()
    assert log.count(DROPPED) == len(reasons), log
    for reason in reasons:
        assert reason in log, log
    assert_nothing_held(broker)

    run_id = submit(cluster, "--steps", "200", "--chunk-steps", "100", "--checkpoint-every", "100")
    finished = wait_for(run_id, cluster.repository(), timeout_s=180)
    assert finished.status is RunStatus.SUCCEEDED, worker.log()[-4000:]
    log = worker.log()
    assert worker.alive()
    for symptom in ("Unrecoverable error", "Connection to broker lost", "Traceback", BODY_MARKER):
        assert symptom not in log, log
    deadline = time.monotonic() + 10
    while broker.hlen("unacked"):  # the normal run's message is acknowledged once it is done
        assert time.monotonic() < deadline, broker.hkeys("unacked")
        time.sleep(0.1)
    assert_nothing_held(broker)
    return worker


def test_an_envelope_whose_body_is_not_base64_is_dropped_without_holding_the_prefetch_slot(
    cluster: Cluster,
) -> None:
    def push(_: Cluster, broker: redis.Redis[bytes]) -> None:
        broker.lpush(TRAIN_QUEUE, envelope("!!!"))

    assert_dropped_and_worker_carries_on(cluster, push, ["body is not base64"])


def test_a_deeply_nested_json_item_is_dropped_and_the_worker_survives(cluster: Cluster) -> None:
    def push(_: Cluster, broker: redis.Redis[bytes]) -> None:
        broker.lpush(TRAIN_QUEUE, b"[" * 100_000 + b"]" * 100_000)

    assert_dropped_and_worker_carries_on(cluster, push, ["nested too deeply"])


def test_an_empty_json_object_is_dropped_without_a_broker_reconnect(cluster: Cluster) -> None:
    def push(_: Cluster, broker: redis.Redis[bytes]) -> None:
        broker.lpush(TRAIN_QUEUE, b"{}")

    assert_dropped_and_worker_carries_on(cluster, push, ["'properties'"])


#: Celery registers these on every app; a message naming one must not run it.
CELERY_BUILTIN_TASKS = (
    "celery.backend_cleanup",
    "celery.chord_unlock",
    "celery.accumulate",
    "celery.map",
    "celery.starmap",
    "celery.chunks",
    "celery.group",
    "celery.chain",
    "celery.chord",
)


def test_messages_naming_celery_builtin_tasks_are_dropped_and_never_run(cluster: Cluster) -> None:
    from worker.cluster.celery_app import create_app

    def push(_: Cluster, broker: redis.Redis[bytes]) -> None:
        app = create_app(cluster.settings())
        for name in CELERY_BUILTIN_TASKS:
            app.send_task(name, args=[BODY_MARKER], queue=TRAIN_QUEUE)

    reasons = [f"task {name!r} is not a trainq task" for name in CELERY_BUILTIN_TASKS]
    worker = assert_dropped_and_worker_carries_on(cluster, push, reasons)
    log = worker.log()
    for name in CELERY_BUILTIN_TASKS:
        assert f"Task {name}[" not in log, log  # Celery's "received"/"succeeded" lines


@pytest.mark.parametrize("timing", [{"countdown": 3600}, {"eta": "2099-01-01T00:00:00+00:00"}])
def test_a_message_with_an_eta_or_countdown_is_refused_not_parked_in_unacked(
    cluster: Cluster, timing: dict[str, object]
) -> None:
    from datetime import datetime

    from worker.cluster.celery_app import create_app

    options = dict(timing)
    if "eta" in options:
        options["eta"] = datetime.fromisoformat(str(options["eta"]))

    def push(_: Cluster, broker: redis.Redis[bytes]) -> None:
        app = create_app(cluster.settings())
        app.send_task("trainq.train_run", args=[424242], queue=TRAIN_QUEUE, **options)  # type: ignore[arg-type]

    assert_dropped_and_worker_carries_on(cluster, push, ["has an ETA"])


def test_a_40_mib_item_is_dropped_unread_and_the_main_process_memory_never_grows(
    cluster: Cluster,
) -> None:
    payload = base64.b64encode(BODY_MARKER.encode() * (30 * MIB // len(BODY_MARKER))).decode()
    item = envelope(payload)
    assert len(item) > 40 * MIB
    before_mib: list[float] = []

    def push(_: Cluster, broker: redis.Redis[bytes]) -> None:
        time.sleep(2)  # let start-up allocations settle
        before_mib.append(main_process_memory_mib(cluster.workers[0]))
        before_mib.append(main_process_memory_mib(cluster.workers[0], "VmHWM"))
        broker.lpush(TRAIN_QUEUE, item)

    worker = assert_dropped_and_worker_carries_on(cluster, push, ["larger than the limit"])
    after_mib = main_process_memory_mib(worker)
    peak_mib = main_process_memory_mib(worker, "VmHWM")
    print(
        f"main process RSS: {before_mib[0]:.0f} MiB before, {after_mib:.0f} MiB after "
        f"(peak {before_mib[1]:.0f} MiB before the item, {peak_mib:.0f} MiB after)"
    )
    assert after_mib - before_mib[0] < 25, (before_mib[0], after_mib)
    assert peak_mib - before_mib[1] < 25, "the item was held whole at some point"


def test_malformed_broadcasts_on_the_control_channel_are_dropped_and_the_worker_survives(
    cluster: Cluster,
) -> None:
    from tests.integration.harness import REDIS_TEST_DB

    def push(_: Cluster, broker: redis.Redis[bytes]) -> None:
        channel = f"/{REDIS_TEST_DB}.celery.pidbox"  # kombu's fanout channel for control commands
        deadline = time.monotonic() + 120
        while broker.publish(channel, b"{}") == 0:  # nobody got it: not subscribed yet
            assert time.monotonic() < deadline, "the worker never subscribed to its pidbox"
            time.sleep(0.2)
        assert broker.publish(channel, b"[" * 100_000 + b"]" * 100_000) == 1

    assert_dropped_and_worker_carries_on(
        cluster, push, ["no 'properties' object", "nested too deeply"]
    )


def test_a_message_with_a_header_trainq_never_sends_is_dropped_before_celery_logs_its_body(
    cluster: Cluster,
) -> None:
    body = base64.b64encode(json.dumps([[BODY_MARKER], {}, {}]).encode()).decode()
    headers = {"task": "trainq.train_run", "id": "bad-expiry", "expires": "not a date"}

    def push(_: Cluster, broker: redis.Redis[bytes]) -> None:
        broker.lpush(TRAIN_QUEUE, envelope(body, headers))

    assert_dropped_and_worker_carries_on(cluster, push, ["sets 'expires'"])


def test_a_run_id_of_700_000_characters_costs_one_bounded_log_line_and_the_next_run_finishes(
    cluster: Cluster,
) -> None:
    """The guard passes items up to 1 MiB; a run id that fills one used to hold the job slot for
    minutes while the whole id was formatted and redacted (quadratically) into the log."""
    from worker.cluster.celery_app import create_app

    hostile_id = "r" * 700_000
    worker = cluster.start_worker(worker_command())
    broker = redis.Redis.from_url(cluster.broker_url)
    create_app(cluster.settings()).send_task(
        "trainq.train_run", args=[hostile_id], queue=TRAIN_QUEUE
    )
    wait_for_log(worker, "is not a positive integer", 1, timeout_s=120)
    log = worker.log()
    assert DROPPED not in log  # the guard let it through: the task itself rejected it
    assert "(700000 characters)" in log
    assert "r" * 1_000 not in log
    assert len(log) < 100_000

    run_id = submit(cluster, "--steps", "200", "--chunk-steps", "100", "--checkpoint-every", "100")
    finished = wait_for(run_id, cluster.repository(), timeout_s=180)
    assert finished.status is RunStatus.SUCCEEDED, worker.log()[-4000:]
    assert "Traceback" not in worker.log()
    deadline = time.monotonic() + 10
    while broker.hlen("unacked"):
        assert time.monotonic() < deadline, broker.hkeys("unacked")
        time.sleep(0.1)
    assert_nothing_held(broker)
