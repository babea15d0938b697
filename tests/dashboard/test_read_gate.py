"""The dashboard's two guards against a burst, in process: the read gate (a bounded number of
reads at once, a bounded line, the rest turned away) and the broker snapshot (one question to
the broker at a time, shared by every request that waits, reused while fresh). They count calls
and threads; nothing here is timed."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from api_cli.dashboard.broker_snapshot import BrokerSnapshot
from api_cli.dashboard.queue_view import broker_state
from api_cli.dashboard.read_gate import DashboardBusyError, ReadGate
from storage import Settings
from tests.integration.harness import REDIS_HOST_URL, REDIS_TEST_DB
from tests.services import require_redis


class Blocking:
    """A blocking read that waits until released, counting calls and the most at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.at_once = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self.calls += 1
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        self.release.wait(timeout=30)
        with self._lock:
            self.at_once -= 1
        return "read"


async def until(condition: Any) -> None:
    """Yield to the loop (and the threads) until ``condition()`` holds."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def test_a_full_line_of_reads_is_turned_away_and_the_rest_are_served() -> None:
    work = Blocking()

    async def scenario() -> list[Any]:
        gate = ReadGate(threads=2, max_waiting=3, wait_s=60)
        calls = [asyncio.ensure_future(gate.run(work)) for _ in range(10)]
        await until(lambda: work.calls == 2 and sum(c.done() for c in calls) == 5)
        work.release.set()
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert outcomes.count("read") == 5  # two running, three in line
    assert sum(isinstance(o, DashboardBusyError) for o in outcomes) == 5
    assert work.most_at_once == 2


def test_a_read_waiting_longer_than_its_limit_is_turned_away() -> None:
    work = Blocking()

    async def scenario() -> list[Any]:
        gate = ReadGate(threads=1, max_waiting=10, wait_s=0.05)
        first = asyncio.ensure_future(gate.run(work))
        await until(lambda: work.calls == 1)
        second = await asyncio.gather(gate.run(work), return_exceptions=True)
        work.release.set()
        return [await first, *second]

    first, second = asyncio.run(scenario())
    assert first == "read"
    assert isinstance(second, DashboardBusyError)
    assert work.calls == 1


def test_a_cancelled_request_keeps_its_slot_until_its_read_ends() -> None:
    work = Blocking()

    async def scenario() -> tuple[int, int]:
        gate = ReadGate(threads=1, max_waiting=10, wait_s=60)
        first = asyncio.ensure_future(gate.run(work))
        await until(lambda: work.calls == 1)
        first.cancel()  # the client went away; its read goes on in its thread
        second = asyncio.ensure_future(gate.run(work))
        await asyncio.sleep(0.1)
        running_while_cancelled_read_runs = work.calls
        work.release.set()
        await second
        return running_while_cancelled_read_runs, work.most_at_once

    calls_meanwhile, most_at_once = asyncio.run(scenario())
    assert calls_meanwhile == 1
    assert most_at_once == 1


def test_every_request_waiting_for_the_broker_shares_one_question() -> None:
    work = Blocking()

    async def scenario() -> tuple[list[Any], int]:
        snapshot = BrokerSnapshot(lambda: {"ok": True, "asked": work()}, wait_s=60)
        reads = [asyncio.ensure_future(snapshot.read()) for _ in range(50)]
        await until(lambda: work.calls == 1)
        work.release.set()
        return await asyncio.gather(*reads), snapshot.questions

    answers, questions = asyncio.run(scenario())
    assert questions == 1 and work.calls == 1
    assert all(answer == {"ok": True, "asked": "read"} for answer in answers)


def test_a_fresh_answer_is_reused_and_a_stale_one_asked_again() -> None:
    now = [100.0]
    calls: list[int] = []

    def ask() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    async def scenario() -> list[Any]:
        snapshot = BrokerSnapshot(ask, fresh_s=2.0, clock=lambda: now[0])
        first = await snapshot.read()
        now[0] += 1.0
        second = await snapshot.read()
        now[0] += 5.0
        third = await snapshot.read()
        return [first, second, third]

    first, second, third = asyncio.run(scenario())
    assert len(calls) == 2
    assert first == second == {"n": 1}
    assert third == {"n": 2}


def test_a_broker_that_does_not_answer_in_time_is_a_message_and_is_asked_once() -> None:
    work = Blocking()

    async def scenario() -> tuple[list[Any], int]:
        snapshot = BrokerSnapshot(lambda: {"ok": True, "asked": work()}, wait_s=0.05)
        answers = await asyncio.gather(*(snapshot.read() for _ in range(20)))
        questions = snapshot.questions
        work.release.set()
        await until(lambda: snapshot.questions == 1 and work.at_once == 0)
        return list(answers), questions

    answers, questions = asyncio.run(scenario())
    assert questions == 1
    assert all(a["ok"] is False and "has not answered" in a["message"] for a in answers)


def test_forty_requests_for_the_real_broker_make_one_census(tmp_path: Path) -> None:
    require_redis()
    settings = Settings.from_env(
        {
            "TRAINQ_BROKER_URL": f"{REDIS_HOST_URL}/{REDIS_TEST_DB}",
            "TRAINQ_DATABASE_URL": f"sqlite:///{tmp_path / 'trainq.db'}",
        }
    )

    async def scenario() -> tuple[list[Any], int]:
        snapshot = BrokerSnapshot(lambda: broker_state(settings), wait_s=60)
        answers = await asyncio.gather(*(snapshot.read() for _ in range(40)))
        return list(answers), snapshot.questions

    answers, questions = asyncio.run(scenario())
    assert questions == 1
    assert all(answer["ok"] is True for answer in answers), answers[0]
    assert {"train", "eval"} <= {q["queue"] for q in answers[0]["queues"]}
