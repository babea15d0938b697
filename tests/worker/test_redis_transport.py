"""The hardened kombu transport itself, on the real Redis (the Celery worker is not needed)."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Message, Producer, Queue

from tests.integration.harness import REDIS_HOST_URL, REDIS_TEST_DB, flush_test_redis
from tests.services import require_redis

pytestmark = [pytest.mark.redis]
URL = f"{REDIS_HOST_URL}/{REDIS_TEST_DB}"


@pytest.fixture
def broker() -> Iterator[redis.Redis[bytes]]:
    require_redis()
    flush_test_redis()
    client = redis.Redis.from_url(URL)
    yield client
    client.close()
    flush_test_redis()


def test_a_message_whose_delivery_fails_on_its_content_is_acknowledged_and_frees_the_slot(
    broker: redis.Redis[bytes],
) -> None:
    queue = Queue("train", Exchange("train", type="direct"), routing_key="train")
    handled: list[object] = []

    def handle(body: object, message: Message) -> None:
        handled.append(body)
        if body == [[1], {}, {}]:
            raise ValueError("content the consumer cannot handle")
        message.ack()

    with Connection(URL, transport="worker.cluster.redis_transport:Transport") as connection:
        channel = connection.channel()
        channel.basic_qos(0, 1, False)  # prefetch 1, as the worker
        with Consumer(channel, [queue], callbacks=[handle]):  # declares and binds the queue
            producer = Producer(channel, exchange=queue.exchange, routing_key="train")
            for body in ([[1], {}, {}], [[2], {}, {}]):
                producer.publish(
                    body, serializer="json", headers={"task": "trainq.train_run", "id": str(body)}
                )
            connection.drain_events(timeout=5)
            assert broker.hlen("unacked") == 0  # the failed one holds no slot…
            connection.drain_events(timeout=5)  # …so the next one is taken
    assert handled == [[[1], {}, {}], [[2], {}, {}]]
    assert broker.hlen("unacked") == 0 and broker.llen("train") == 0


def test_an_item_refused_by_the_screen_is_never_reserved(broker: redis.Redis[bytes]) -> None:
    queue = Queue("train", Exchange("train", type="direct"), routing_key="train")
    handled: list[object] = []
    good = {
        "body": base64.b64encode(b"[[3], {}, {}]").decode(),
        "content-type": "application/json",
        "content-encoding": "utf-8",
        "headers": {"task": "trainq.train_run", "id": "g"},
        "properties": {
            "body_encoding": "base64",
            "delivery_tag": "t-good",
            "delivery_info": {"exchange": "train", "routing_key": "train"},
        },
    }
    broker.lpush("train", b"{}", json.dumps(good).encode())
    with Connection(URL, transport="worker.cluster.redis_transport:Transport") as connection:
        channel = connection.channel()
        channel.basic_qos(0, 1, False)

        def handle(body: object, message: Message) -> None:
            handled.append(body)
            message.ack()

        with Consumer(channel, [queue], callbacks=[handle]):
            for _ in range(3):
                if not handled:
                    with contextlib.suppress(TimeoutError):
                        connection.drain_events(timeout=2)
    assert handled == [[[3], {}, {}]]
    assert broker.hlen("unacked") == 0 and broker.llen("train") == 0
