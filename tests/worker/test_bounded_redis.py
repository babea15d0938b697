"""The Redis reply parser the worker reads queues with: oversize items are never held whole."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest
import redis

from tests.integration.harness import REDIS_HOST_URL, REDIS_TEST_DB, flush_test_redis
from tests.services import require_redis
from worker.cluster.bounded_redis import OversizeItem, bounded_parser
from worker.cluster.message_guard import MAX_ITEM_BYTES

pytestmark = [pytest.mark.redis]
MIB = 1024 * 1024


@pytest.fixture(params=[2, 3], ids=["RESP2", "RESP3"])
def bounded_client(request: pytest.FixtureRequest) -> Iterator[redis.Redis[bytes]]:
    require_redis()
    parser = bounded_parser({"protocol": request.param})
    if parser is None:
        pytest.skip("hiredis is installed: redis-py reads replies with it instead")
    flush_test_redis()
    pool = redis.ConnectionPool.from_url(
        f"{REDIS_HOST_URL}/{REDIS_TEST_DB}", parser_class=parser, protocol=request.param
    )
    client = redis.Redis(connection_pool=pool)
    yield client
    client.close()
    flush_test_redis()


def test_an_item_over_the_limit_is_read_off_in_chunks_and_stands_in_as_its_size(
    bounded_client: redis.Redis[bytes],
) -> None:
    bounded_client.lpush("train", b"small", b"y" * (40 * MIB), b"x" * MAX_ITEM_BYTES)
    assert bounded_client.rpop("train") == b"small"
    tracemalloc.start()
    try:
        oversize = bounded_client.brpop(["train"], timeout=1)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert oversize is not None
    key, item = oversize
    assert key == b"train"
    assert isinstance(item, OversizeItem) and item == b"" and item.size_bytes == 40 * MIB
    assert peak_bytes < 2 * MIB  # never the whole reply, and the connection stays in step:
    assert bounded_client.rpop("train") == b"x" * MAX_ITEM_BYTES
    assert bounded_client.ping()
