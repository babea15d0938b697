"""`trainq exporter` scraped by a real Prometheus (Debian's `prometheus` package): the values
Prometheus stores agree with the database and the broker; the shipped alert rules and Grafana
dashboard are valid and name only metrics the exporter exposes."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from storage import MetricChunk, Repository, RunStatus
from storage.records import JobKind
from tests.integration.harness import Cluster

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy/prometheus/trainq-alerts.yml"
ALERT_TESTS = ROOT / "deploy/prometheus/trainq-alerts.test.yml"
DASHBOARD = ROOT / "deploy/grafana/trainq-dashboard.json"
#: Every wait below polls; these only bound how long a broken setup takes to fail.
START_TIMEOUT_S = 60.0
SCRAPE_TIMEOUT_S = 60.0

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y prometheus (see .ci/run)")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def _answers(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited early:\n{log.read_text(errors='replace')}")
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer in {START_TIMEOUT_S} s:\n{log.read_text(errors='replace')}")


def _start(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("w") as output:
        return subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "--", *argv],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _seed_known_states(repository: Repository, cluster: Cluster) -> dict[str, int]:
    """Runs in every state that matters, and two gpu runs published with no gpu worker."""
    from worker.cluster.publisher import publisher_for

    def new(queue: str) -> int:
        run = repository.create_run(
            kind=JobKind.TRAIN, config={"steps": 100}, seed=1, queue=queue, max_attempts=3
        )
        return run.id

    def claim(run_id: int, ttl_s: float = 3600) -> int:
        claimed = repository.claim_run(
            run_id, owner="h:1:x", worker_host="host-a", lease_ttl_s=ttl_s
        )
        assert claimed is not None
        return claimed.attempt

    succeeded, failed, handed_back, taken_over = (new("train") for _ in range(4))
    attempt = claim(succeeded)
    repository.finish_run(succeeded, attempt, RunStatus.SUCCEEDED)
    repository.finish_run(failed, claim(failed), RunStatus.FAILED, error="loss became NaN")
    repository.hand_back_run(handed_back, claim(handed_back), owner="h:1:x")
    lost = repository.claim_run(taken_over, owner="h:2:y", worker_host="host-b", lease_ttl_s=1)
    assert lost is not None
    later = repository.get_run(taken_over).lease_expires_at
    assert later is not None
    repository.requeue_expired(taken_over, now=later + timedelta(seconds=1))
    attempt = claim(taken_over)
    steps = np.arange(1, 201, dtype=np.float32)
    chunk = MetricChunk(first_step=1, loss=steps, accuracy=steps / 1e6)
    repository.record_chunk(taken_over, attempt, chunk, lease_ttl_s=3600)
    publisher = publisher_for(cluster.settings())
    for _ in range(2):
        publisher.publish(repository, repository.get_run(new("gpu")))
    return {"running": taken_over, "queued": handed_back}


@contextlib.contextmanager
def _exporter(cluster: Cluster, tmp_path: Path) -> Iterator[int]:
    """`trainq exporter` on a free port, answering."""
    port = _free_port()
    log = tmp_path / "exporter.log"
    argv = [sys.executable, "-m", "api_cli", "exporter", "--port", str(port)]
    # A short census keeps a scrape under Prometheus's 1 s scrape timeout below.
    process = _start([*argv, "--census-timeout", "0.5"], log, cluster.env())
    try:
        _answers(f"http://127.0.0.1:{port}/metrics", process, log)
        yield port
    finally:
        _stop(process)


@contextlib.contextmanager
def _prometheus(exporter_port: int, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the exporter every second with trainq's alert rules."""
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    target = {"targets": [f"127.0.0.1:{exporter_port}"]}
    config.write_text(
        json.dumps(
            {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(ALERTS)],
                "scrape_configs": [{"job_name": "trainq", "static_configs": [target]}],
            }
        )
    )
    argv = [
        _binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    log = tmp_path / "prometheus.log"
    process = _start(argv, log)
    try:
        base = f"http://127.0.0.1:{port}"
        _answers(f"{base}/-/ready", process, log)
        yield base
    finally:
        _stop(process)


def _query(base: str, expression: str) -> dict[tuple[tuple[str, str], ...], float]:
    """``{labels (without __name__, job, instance): value}`` of an instant query."""
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    body = json.loads(_get(url))
    assert body["status"] == "success", body
    ignored = {"__name__", "job", "instance"}
    return {
        tuple(sorted((k, v) for k, v in item["metric"].items() if k not in ignored)): float(
            item["value"][1]
        )
        for item in body["data"]["result"]
    }


def _scraped(base: str, expression: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Poll until Prometheus has a scrape in which ``expression`` has a value."""
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _query(base, expression)
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"Prometheus has no {expression} after {SCRAPE_TIMEOUT_S} s")


def _one(base: str, expression: str) -> float:
    [value] = _scraped(base, expression).values()
    return value


@pytest.mark.slow
def test_prometheus_scrapes_the_exporter_and_its_values_agree_with_the_database(
    cluster: Cluster, tmp_path: Path
) -> None:
    repository = cluster.repository()
    runs = _seed_known_states(repository, cluster)

    with _exporter(cluster, tmp_path) as port, _prometheus(port, tmp_path) as base:
        _check_against_the_database(base, repository, cluster, runs)


def _check_against_the_database(
    base: str, repository: Repository, cluster: Cluster, runs: dict[str, int]
) -> None:
    assert _one(base, "trainq_database_up") == 1
    assert _one(base, "trainq_broker_up") == 1
    stored = repository.list_runs(kind=JobKind.TRAIN)
    by_state: dict[tuple[str, str], int] = {}
    for run in stored:
        by_state[(run.queue, run.status.value)] = by_state.get((run.queue, run.status.value), 0) + 1
    jobs = _scraped(base, 'trainq_jobs{kind="train"} > 0')
    assert {(dict(k)["queue"], dict(k)["status"]): int(v) for k, v in jobs.items()} == by_state
    assert by_state == {
        ("train", "succeeded"): 1,
        ("train", "failed"): 1,
        ("train", "queued"): 1,
        ("train", "running"): 1,
        ("gpu", "queued"): 2,
    }
    depth = _scraped(base, "trainq_queue_depth")
    assert {dict(k)["queue"]: int(v) for k, v in depth.items()} == {"train": 1, "gpu": 2, "eval": 0}
    broker = redis.Redis.from_url(cluster.broker_url)
    lengths = _scraped(base, "trainq_broker_queue_length")
    assert {dict(k)["queue"]: int(v) for k, v in lengths.items()} == {
        queue: int(broker.llen(queue)) for queue in ("train", "eval", "gpu")
    }
    assert lengths[(("queue", "gpu"),)] == 2
    online = _scraped(base, "trainq_workers_online")
    assert set(online.values()) == {0.0}
    attempts = [a for run in stored for a in repository.list_attempts(run.id)]
    outcomes = {a.outcome.value for a in attempts if a.outcome is not None}
    assert outcomes == {"succeeded", "failed", "handed back", "lost"}
    assert _one(base, 'trainq_takeovers_total{queue="train"}') == 1
    assert _one(base, 'trainq_hand_backs_total{queue="train"}') == 1
    assert _one(base, 'trainq_run_failures_total{queue="train"}') == 1
    started = sum(1 for run in stored if run.started_at is not None)
    waits = _one(base, 'sum(trainq_queue_wait_seconds_count{kind="train"})')
    assert waits == started == 4
    running = repository.get_run(runs["running"])
    steps = _one(base, f'trainq_run_steps_done{{run_id="{running.id}"}}')
    assert steps == running.steps_done == 200
    assert _one(base, f'trainq_run_steps_per_second{{run_id="{running.id}"}}') > 0
    assert _one(base, 'trainq_worker_steps_per_second{host="host-a"}') > 0
    oldest = _one(base, 'trainq_queue_oldest_age_seconds{queue="gpu"}')
    assert 0 < oldest < SCRAPE_TIMEOUT_S + START_TIMEOUT_S
    _the_no_consumer_alert_goes_pending_for_the_queues_with_jobs(base)


def _the_no_consumer_alert_goes_pending_for_the_queues_with_jobs(base: str) -> None:
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    while time.monotonic() < deadline:
        alerts = json.loads(_get(f"{base}/api/v1/alerts"))["data"]["alerts"]
        queues = {
            alert["labels"]["queue"]
            for alert in alerts
            if alert["labels"]["alertname"] == "TrainqQueueWithoutConsumer"
        }
        if queues:
            assert queues == {"train", "gpu"}
            return
        time.sleep(0.2)
    pytest.fail("TrainqQueueWithoutConsumer never went pending")


def test_the_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    promtool = _binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _exposed_names() -> set[str]:
    """Every sample name the exporter writes (read from its source: the families' names)."""
    source = (ROOT / "api_cli/exporter/families.py").read_text()
    names = set(re.findall(r'"(trainq_[a-z_]+)"', source))
    counters = {"trainq_takeovers", "trainq_hand_backs", "trainq_run_failures"}
    counters |= {"trainq_attempts_ended"}
    histogram = {"trainq_queue_wait_seconds"}
    exposed = (names - counters - histogram) | {f"{name}_total" for name in counters}
    exposed |= {f"trainq_queue_wait_seconds_{part}" for part in ("bucket", "sum", "count")}
    return exposed


def test_the_grafana_dashboard_and_the_alerts_query_only_metrics_the_exporter_exposes() -> None:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    expressions += re.findall(r"expr: \|?\s*(.+?)\n\s+for:", ALERTS.read_text(), re.DOTALL)
    used = {
        name for expression in expressions for name in re.findall(r"trainq_[a-z_]+", expression)
    }
    assert len(dashboard["panels"]) >= 6 and used
    assert used - _exposed_names() == set()
