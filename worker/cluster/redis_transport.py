"""kombu's Redis transport, hardened so that no queue item can stop or wedge a worker.

Every item BRPOP returns is screened by :func:`worker.cluster.message_guard.screen_item` in the
Redis client itself, before kombu decodes it (and one over the size limit is not even read whole,
see ``worker.cluster.bounded_redis``): a refused item is logged once (reason and size, never
its content) and reported to kombu as "no message", so it never reaches the prefetch slot, the
``unacked`` hash, Celery or the pool. BRPOP has already removed it, so nothing is left to ack.
If delivering an item that passed the screen still fails on its content, the message is
acknowledged, so that it cannot keep the worker's one prefetch slot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache, partial
from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str

from worker.cluster.bounded_redis import OversizeItem, bounded_parser
from worker.cluster.message_guard import MAX_ITEM_BYTES, screen_item

logger = logging.getLogger(__name__)

#: What delivering a message with bad content raises in kombu or Celery.
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError)

#: kombu's stubs do not declare the private methods overridden here.
_RedisChannel: Any = kombu_redis.Channel


def _log_drop(queue: str, size_bytes: int, reason: str) -> None:
    logger.error(
        "dropped a broker item on queue %r (%d bytes, never run): %s", queue, size_bytes, reason
    )


def _accepted(item: bytes, queue: str | bytes) -> bool:
    """Screen ``item`` read from ``queue``; log and refuse it if it must be dropped."""
    queue = bytes_to_str(queue)
    if isinstance(item, OversizeItem):
        _log_drop(queue, item.size_bytes, f"larger than the limit of {MAX_ITEM_BYTES:,} bytes")
        return False
    reason = screen_item(item, queue)
    if reason is not None:
        _log_drop(queue, len(item), reason)
    return reason is None


@cache
def _screening_client(base: type[Any], sep: str) -> type[Any]:
    """``base`` (kombu's Redis client class) whose BRPOP replies are screened."""

    class ScreeningRedis(base):  # type: ignore[misc]
        def parse_response(self, connection: Any, command_name: Any, **options: Any) -> Any:
            response = super().parse_response(connection, command_name, **options)
            if command_name != "BRPOP" or not response:
                return response
            key, item = response
            if _accepted(item, bytes_to_str(key).rsplit(sep, 1)[0]):
                return response
            return None  # kombu takes this for a BRPOP timeout and simply waits again

    ScreeningRedis.__name__ = ScreeningRedis.__qualname__ = f"Screening{base.__name__}"
    return ScreeningRedis


class Channel(_RedisChannel):  # type: ignore[misc]
    """A Redis channel that drops bad queue items instead of crashing or wedging the consumer."""

    def _get_client(self) -> Any:
        client = super()._get_client()
        if isinstance(client, partial):  # kombu's key-prefixing client, with its prefix bound
            screening: Any = _screening_client(client.func, self.sep)
            return partial(screening, *client.args, **client.keywords)
        return _screening_client(client, self.sep)

    def _handle_message(self, client: Any, response: Any) -> Any:
        """A broadcast (``celery.pidbox``) gets the same screen; a refused one is emptied."""
        payload: Any = super()._handle_message(client, response)
        data = payload.get("data")
        is_message = bytes_to_str(payload["type"]).endswith("message")
        if is_message and isinstance(data, bytes) and not _accepted(data, payload["channel"]):
            payload["data"] = None  # kombu delivers nothing for a message without data
        return payload

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        parser = bounded_parser(params) if asynchronous else None
        if parser is not None:  # the connections that BRPOP and LISTEN
            params["parser_class"] = parser
        return params

    def basic_consume(
        self, queue: str, no_ack: bool, callback: Callable[[Any], Any], consumer_tag: str, **kw: Any
    ) -> Any:
        def deliver(message: Any) -> Any:
            try:
                return callback(message)
            except _MALFORMED as exc:
                # kombu has reserved it already: release the slot, or the worker takes no more.
                if not no_ack and not message.acknowledged:
                    message.ack()
                _log_drop(
                    queue, len(message.body or b""), f"delivery failed ({type(exc).__name__})"
                )
                return None

        return super().basic_consume(
            queue, no_ack=no_ack, callback=deliver, consumer_tag=consumer_tag, **kw
        )

    def _brpop_read(self, **options: Any) -> bool:
        try:
            return bool(super()._brpop_read(**options))
        except Empty:
            raise
        except self.connection_errors:
            raise
        except _MALFORMED as exc:  # not reserved yet: nothing to release
            _log_drop("?", 0, f"not a message ({type(exc).__name__})")
            return True


class Transport(kombu_redis.Transport):
    """The Redis transport with :class:`Channel`."""

    Channel = Channel
