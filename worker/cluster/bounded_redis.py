"""A redis-py reply parser that never holds a bulk reply over ``MAX_ITEM_BYTES`` in memory.

redis-py reads a whole reply before anyone can look at it: BRPOP of a 40 MiB queue item costs
the worker's main process about three times that at its peak (the socket buffer, the bytes, and
a copy), however soon the item is dropped afterwards. This parser reads the length that prefixes
every bulk reply and, when it is over the limit, reads the reply off the socket in small chunks
and throws each away, returning an empty :class:`OversizeItem` that records the size instead.
``worker.cluster.redis_transport`` uses it for the connections that BRPOP and LISTEN; the screen
then drops the item by its size. It replaces redis-py's own Python parser only: where ``hiredis`` is
installed, redis-py uses that and replies are read whole (the screen still drops them unparsed).
It relies on redis-py's private parser classes (``redis._parsers``, stable from 5.0 to 8.x).
"""

from __future__ import annotations

from typing import Any, Final

import redis
from redis._parsers import _RESP2Parser, _RESP3Parser
from redis._parsers.socket import SocketBuffer

from worker.cluster.message_guard import MAX_ITEM_BYTES

#: Read and thrown away this much at a time (redis-py's own socket read size).
_DISCARD_CHUNK_BYTES: Final = 64 * 1024


class OversizeItem(bytes):
    """An empty stand-in for a bulk reply of ``size_bytes`` that was read off and discarded."""

    size_bytes: int

    def __new__(cls, size_bytes: int) -> OversizeItem:
        item = super().__new__(cls, b"")
        item.size_bytes = size_bytes
        return item


class _BoundedSocketBuffer(SocketBuffer):
    def read(self, length: int, *timeout: Any, **options: Any) -> bytes:
        if length <= MAX_ITEM_BYTES:
            data: bytes = super().read(length, *timeout, **options)
            return data
        remaining = length + 2  # the reply and its CRLF
        while remaining:
            chunk = self._buffer.read(min(remaining, _DISCARD_CHUNK_BYTES))
            if chunk:
                remaining -= len(chunk)
                self.purge()  # empties the buffer once everything in it has been read
            else:
                self._read_from_socket(min(remaining, _DISCARD_CHUNK_BYTES), *timeout, **options)
        return OversizeItem(length)


def _install_bounded_buffer(parser: Any, connection: Any) -> None:
    parser._buffer = _BoundedSocketBuffer(
        connection._sock, parser.socket_read_size, connection.socket_timeout
    )


class BoundedRESP2Parser(_RESP2Parser):
    """redis-py's RESP2 Python parser, with bulk replies over the limit discarded unread."""

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)  # type: ignore[no-untyped-call]
        _install_bounded_buffer(self, connection)


class BoundedRESP3Parser(_RESP3Parser):
    """redis-py's RESP3 Python parser, with bulk replies over the limit discarded unread."""

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)  # type: ignore[no-untyped-call]
        _install_bounded_buffer(self, connection)


_BOUNDED: Final[dict[type[Any], type[Any]]] = {
    _RESP2Parser: BoundedRESP2Parser,
    _RESP3Parser: BoundedRESP3Parser,
}


def bounded_parser(connection_kwargs: dict[str, Any]) -> type[Any] | None:
    """The bounded parser for connections made with ``connection_kwargs``.

    ``None`` where redis-py would not read with its own Python parser (``hiredis`` installed).
    Which one redis-py picks depends on its version (RESP3 by default from 8) and the
    ``protocol`` option, so it is asked: an unconnected connection shows its parser.
    """
    protocol = connection_kwargs.get("protocol")
    probe: Any = redis.Connection(**({} if protocol is None else {"protocol": protocol}))
    return _BOUNDED.get(type(probe._parser))
