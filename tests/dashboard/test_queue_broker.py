"""The queue page with a broker configured: it asks Redis the way `trainq status` does, and a
broker that does not answer is a message on the page, not an error page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api_cli.dashboard.queue_view import broker_state, queue_page
from storage import Database, Repository, Settings
from tests.integration.harness import REDIS_TEST_DB
from tests.services import require_redis


def queue_json(tmp_path: Path, broker_url: str) -> dict[str, Any]:
    path = tmp_path / "trainq.db"
    writer = Database(f"sqlite:///{path}")
    writer.ensure_schema(auto_upgrade=True)
    settings = Settings.from_env(
        {"TRAINQ_BROKER_URL": broker_url, "TRAINQ_DATABASE_URL": f"sqlite:///{path}"}
    )
    reader = Repository(Database(f"sqlite:///{path}", read_only=True))
    try:
        # What GET /api/queue returns (the app asks the broker through its BrokerSnapshot).
        return queue_page(reader, broker_state(settings), datetime.now(UTC))
    finally:
        writer.dispose(close=True)


def test_with_redis_the_queue_page_lists_queue_depths_and_workers(tmp_path: Path) -> None:
    require_redis()
    broker = queue_json(tmp_path, f"redis://127.0.0.1:6379/{REDIS_TEST_DB}")["broker"]
    assert isinstance(broker, dict)
    assert broker["configured"] is True and broker["ok"] is True, broker
    assert {"train", "eval"} <= {q["queue"] for q in broker["queues"]}
    assert isinstance(broker["workers"], list)


def test_a_broker_that_does_not_answer_is_a_message_not_an_error(tmp_path: Path) -> None:
    broker = queue_json(tmp_path, "redis://127.0.0.1:1/0")["broker"]
    assert isinstance(broker, dict)
    assert broker["configured"] is True and broker["ok"] is False
    assert "127.0.0.1:1" in str(broker["message"]) or "redis" in str(broker["message"]).lower()
