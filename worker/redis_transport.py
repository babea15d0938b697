"""kombu's Redis transport, hardened against envelopes that are not messages at all.

The stock transport decodes each item it pops from a queue list inside the consumer loop; an
item that is not a JSON message envelope (``LPUSH train garbage``) raises there and stops the
worker. BRPOP has already removed the item, so dropping it with an error log loses nothing
that could ever have run. Well-formed messages with a disallowed content type (pickle) or an
unknown task are refused by Celery itself; this covers only what Celery never gets to see.
"""

from __future__ import annotations

import logging
from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis

logger = logging.getLogger(__name__)

#: What a malformed envelope raises while kombu decodes and delivers it.
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError)


#: kombu's stubs do not declare the private method overridden here.
_RedisChannel: Any = kombu_redis.Channel


class Channel(_RedisChannel):  # type: ignore[misc]
    """A Redis channel that drops undecodable queue items instead of crashing the consumer."""

    def _brpop_read(self, **options: Any) -> bool:
        try:
            return bool(super()._brpop_read(**options))
        except Empty:
            raise
        except self.connection_errors:
            raise
        except _MALFORMED as exc:
            logger.error("dropped a malformed broker item (not a message envelope): %r", exc)
            return True


class Transport(kombu_redis.Transport):
    """The Redis transport with :class:`Channel`."""

    Channel = Channel
