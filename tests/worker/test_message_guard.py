"""The screen every queue item passes before kombu or Celery parse it (no services needed)."""

from __future__ import annotations

import base64
import json

import pytest

from worker.cluster.message_guard import MAX_ITEM_BYTES, MAX_NESTING, screen_item

MARKER = "secret-body-7c1e"


def item(
    body: object = ([7], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}),
    *,
    raw_body: str | None = None,
    content_type: str = "application/json",
    **headers: object,
) -> bytes:
    """A queue item shaped like the ones trainq's CLI publishes through Celery and kombu."""
    encoded = raw_body if raw_body is not None else base64.b64encode(json.dumps(body).encode())
    return json.dumps(
        {
            "body": encoded if isinstance(encoded, str) else encoded.decode(),
            "content-type": content_type,
            "content-encoding": "utf-8",
            "headers": {"lang": "py", "task": "trainq.train_run", "id": "m1", "eta": None}
            | headers,
            "properties": {
                "body_encoding": "base64",
                "delivery_tag": "t1",
                "delivery_info": {"exchange": "", "routing_key": "train"},
                "priority": 0,
            },
        }
    ).encode()


def test_a_trainq_task_message_is_accepted_on_every_trainq_queue() -> None:
    for queue in ("train", "eval", "gpu"):
        assert screen_item(item(), queue) is None
    assert screen_item(item(timelimit=[None, None], expires=None, shadow=None), "train") is None
    assert screen_item(item(task="trainq.eval_run"), "eval") is None


def test_a_control_reply_on_another_list_only_needs_to_be_an_envelope() -> None:
    reply = item({"w1@host": {"ok": "pong"}}, task=None)
    assert screen_item(reply, "reply.celery.pidbox") is None
    assert screen_item(reply, "train") is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"this is not json", "not JSON"),
        (b"\xff\xfe garbage", "not JSON"),
        (b"{}", "'properties'"),
        (b"[1, 2]", "a JSON list"),
        (b'"text"', "a JSON str"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[" * (MAX_NESTING + 1) + b"]" * (MAX_NESTING + 1), "nested too deeply"),
        (b"9" * 5000, "not JSON"),
        (item(raw_body="!!!"), "body is not base64"),
        (item(raw_body="abc"), "body is not base64"),
        (item({"args": [7]}), "[args, kwargs, embed]"),
        (item(["x"] * 3), "[args, kwargs, embed]"),
        (item(content_type="application/x-python-serialize"), "not application/json"),
        (item(task=None), "names no task"),
        (item(id=None), "no message id"),
        (item(eta="2099-01-01T00:00:00+00:00"), "has an ETA or countdown"),
        (item(countdown=60), "has an ETA or countdown"),
        (item(expires="2099-01-01T00:00:00+00:00"), "sets 'expires'"),
        (item(expires="not a date"), "sets 'expires'"),
        (item(shadow="trainq.eval_run"), "sets 'shadow'"),
        (item(timelimit=[None, 10**9]), "its own time limits"),
        (item(raw_body=base64.b64encode(b"[" * 5000 + b"]" * 5000).decode()), "nested too"),
    ],
)
def test_malformed_items_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    refusal = screen_item(raw, "train")
    assert refusal is not None and reason in refusal


@pytest.mark.parametrize(
    "name",
    ["celery.backend_cleanup", "celery.chord_unlock", "celery.map", "celery.chain", "trainq.nope"],
)
def test_only_trainq_tasks_may_be_named(name: str) -> None:
    assert screen_item(item(task=name), "train") == f"task {name!r} is not a trainq task"


def test_an_item_over_the_limit_is_refused_by_its_size_alone() -> None:
    oversize = b'{"body": "' + b"A" * MAX_ITEM_BYTES + b'"}'
    refusal = "larger than the limit of 1,048,576 bytes; not parsed"
    assert screen_item(oversize, "train") == refusal
    assert screen_item(b"x" * (MAX_ITEM_BYTES + 1), "train") == refusal
    assert screen_item(b"x" * MAX_ITEM_BYTES, "train") == "item is not JSON"


def test_a_reason_never_quotes_the_body_and_quotes_a_task_name_only_briefly() -> None:
    reasons = [
        screen_item(item([[MARKER], {}, {}], eta="2099-01-01"), "train"),
        screen_item(item(raw_body=MARKER + "!"), "train"),
        screen_item(item({MARKER: 1}), "train"),
        screen_item(item(task="celery." + "x" * 10_000), "train"),
    ]
    for reason in reasons:
        assert reason is not None and MARKER not in reason and len(reason) < 120
