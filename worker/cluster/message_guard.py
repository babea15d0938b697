"""What a worker accepts from a queue list, decided before kombu or Celery parse the item.

Anyone who can reach Redis can push any bytes onto a queue list, and the stock consumer trusts
them: an item that kombu cannot turn into a message raises inside the consumer loop (a worker
killed by a ``RecursionError``, a ``KeyError`` taken for a lost connection), one that Celery
cannot decode after kombu has reserved it keeps the worker's only prefetch slot for ever, and a
well-formed message may name a task trainq never meant to run. :func:`screen_item` looks at the
raw bytes BRPOP returned and names what is wrong, so that the transport can drop the item before
anything is reserved, decoded or run. It never returns any part of the item's body.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Final

from worker.queues import ALL_QUEUES, EVAL_TASK, TRAIN_TASK

#: A trainq message carries one job id (about 1.5 KiB with Celery's headers) and a control reply
#: a few KiB, so 1 MiB leaves ample room; the limit keeps one item from costing the worker's
#: main process its decoded copies (a 40 MiB item held 251 MiB there for good).
MAX_ITEM_BYTES: Final = 1024 * 1024
#: Celery's envelopes nest about 6 levels deep. Far below Python's recursion limit (1,000), so
#: no later copy, repr or comparison of an accepted item can recurse that far.
MAX_NESTING: Final = 32
#: The only tasks a trainq queue may name: Celery registers its own (``celery.chord_unlock``,
#: ``celery.backend_cleanup``, ``celery.map``…) on every app, and a message could name them.
TRAINQ_TASKS: Final = frozenset({TRAIN_TASK, EVAL_TASK})
#: Celery headers trainq never sets, each of which would change when or as what a job runs.
_UNSENT_HEADERS: Final = ("expires", "shadow")
#: Longest piece of a header (a task name) quoted in a reason; headers come from anyone.
_QUOTE_CHARS: Final = 60


class _RefusedError(Exception):
    """Raised inside this module with the reason an item is dropped."""


def screen_item(item: bytes, queue: str) -> str | None:
    """Why ``item``, popped from ``queue``, must be dropped; ``None`` if it may be delivered.

    Every item must be a kombu message envelope that kombu can decode. Items on trainq's task
    queues must also be Celery protocol 2 JSON messages for a trainq task, with no ETA or
    countdown (trainq never sends one; Celery would park such a message in ``unacked`` and
    Redis would hand it back every visibility timeout). Other lists this transport reads (the
    replies to ``trainq status``'s control commands) only get the envelope checks.

    Args:
        item: the bytes exactly as BRPOP returned them.
        queue: the queue name (the list's key without kombu's priority suffix).

    Returns:
        A short reason without any of the item's content but the task name, or ``None``.
    """
    if len(item) > MAX_ITEM_BYTES:
        return f"larger than the limit of {MAX_ITEM_BYTES:,} bytes; not parsed"
    try:
        envelope = _parse_json(item, "item")
        body = _check_envelope(envelope)
        if queue in ALL_QUEUES:
            _check_task_message(envelope, _parse_json(body, "body"))
    except _RefusedError as refusal:
        return str(refusal)
    return None


def _parse_json(data: bytes, what: str) -> object:
    """``data`` decoded as JSON; a refusal if it is not JSON or nests too deeply."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise _RefusedError(f"{what} is nested too deeply (over {MAX_NESTING} levels)") from None
    except ValueError:  # also UnicodeDecodeError, and integers too long to convert
        raise _RefusedError(f"{what} is not JSON") from None
    if _depth(value) > MAX_NESTING:
        raise _RefusedError(f"{what} is nested too deeply (over {MAX_NESTING} levels)")
    return value


def _depth(value: object) -> int:
    """How deeply lists and objects nest in ``value``, found without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_NESTING:
                return deepest
            stack.extend((child, level + 1) for child in _children(node))
    return deepest


def _children(node: dict[object, object] | list[object]) -> Iterator[object]:
    return iter(node.values()) if isinstance(node, dict) else iter(node)


def _check_envelope(envelope: object) -> bytes:
    """The checks kombu's ``Message`` and the Redis QoS rely on; returns the decoded body."""
    if not isinstance(envelope, dict):
        raise _RefusedError(f"not a message envelope (a JSON {type(envelope).__name__})")
    properties = envelope.get("properties")
    if not isinstance(properties, dict):
        raise _RefusedError("not a message envelope (no 'properties' object)")
    info = properties.get("delivery_info")
    if not isinstance(properties.get("delivery_tag"), str) or not isinstance(info, dict):
        raise _RefusedError("not a message envelope (no delivery tag or delivery info)")
    if not all(isinstance(info.get(key), str) for key in ("exchange", "routing_key")):
        raise _RefusedError("not a message envelope (no exchange or routing key)")
    headers = envelope.get("headers")
    if headers is not None and not isinstance(headers, dict):
        raise _RefusedError("not a message envelope (headers are not an object)")
    for key in ("content-type", "content-encoding"):
        if not isinstance(envelope.get(key), str | None):
            raise _RefusedError(f"not a message envelope ({key} is not a string)")
    return _decode_body(envelope.get("body"), properties.get("body_encoding"))


def _decode_body(body: object, encoding: object) -> bytes:
    if body is None or body == "":
        return b""
    if not isinstance(body, str):
        raise _RefusedError("body is not a string")
    if encoding == "base64":
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise _RefusedError("body is not base64") from None
    if encoding is None or (isinstance(encoding, str) and encoding.lower() == "utf-8"):
        return body.encode("utf-8", errors="surrogatepass")
    raise _RefusedError("body has an unknown body_encoding")


def _check_task_message(envelope: object, body: object) -> None:
    """Celery protocol 2, JSON, a trainq task, delivered now: what trainq's CLI publishes."""
    assert isinstance(envelope, dict)  # _check_envelope said so
    if envelope.get("content-type") != "application/json":
        raise _RefusedError("content type is not application/json")
    headers = envelope.get("headers") or {}
    task = headers.get("task")
    if not isinstance(task, str):
        raise _RefusedError("names no task (not a Celery protocol 2 message)")
    if task not in TRAINQ_TASKS:
        raise _RefusedError(f"task {task[:_QUOTE_CHARS]!r} is not a trainq task")
    if not isinstance(headers.get("id"), str):
        raise _RefusedError("has no message id")
    if headers.get("eta") is not None or headers.get("countdown") is not None:
        raise _RefusedError("has an ETA or countdown (trainq never sends one)")
    for name in _UNSENT_HEADERS:
        if headers.get(name) is not None:
            raise _RefusedError(f"sets {name!r} (trainq never sends it)")
    if headers.get("timelimit") not in (None, [None, None]):
        raise _RefusedError("sets its own time limits (trainq's are fixed in celery_app)")
    if not (
        isinstance(body, list)
        and len(body) == 3
        and isinstance(body[0], list)
        and isinstance(body[1], dict)
        and isinstance(body[2], dict | None)
    ):
        raise _RefusedError("body is not Celery's [args, kwargs, embed]")
