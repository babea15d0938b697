"""A running run seen in the browser: its row and its curves grow while the page stays open.

The metrics go in through the repository's fenced record path (what a worker calls), into the
same SQLite file the dashboard process has open read-only. The file name sorts after
test_pages.py on purpose: the run made here would otherwise join the lists that test checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from storage import JobKind, MetricChunk, Repository
from tests.dashboard.conftest import Trained, console_problems, home_repository, open_page

LEASE_TTL_S = 120.0


def record(repository: Repository, run_id: int, attempt: int, first: int, last: int) -> None:
    """Steps ``first..last`` of a run, written the way a worker writes them."""
    steps = np.arange(first, last + 1, dtype=np.float32)
    chunk = MetricChunk(
        first_step=first, loss=2.0 / np.sqrt(steps), accuracy=1 - 1 / np.sqrt(steps)
    )
    repository.record_chunk(run_id, attempt, chunk, lease_ttl_s=LEASE_TTL_S)


def wait_for(browser: WebDriver, script: str, expected: str, timeout_s: float = 20) -> None:
    WebDriverWait(browser, timeout_s).until(lambda d: d.execute_script(script) == expected)


def test_a_running_runs_row_and_curves_grow_without_reloading_the_page(
    browser: WebDriver, dashboard_url: str, home: Path, trained: Trained, screenshots: Path
) -> None:
    repository = home_repository(home)
    run = repository.create_run(
        kind=JobKind.TRAIN,
        config={"steps": 400, "learning_rate": 0.01, "chunk_steps": 100},
        seed=1,
        queue="trainq",
        max_attempts=1,
        name="live",
    )
    claimed = repository.claim_run(
        run.id, owner="test-worker", worker_host="test-host", lease_ttl_s=LEASE_TTL_S
    )
    assert claimed is not None
    record(repository, run.id, claimed.attempt, 1, 100)

    selector = f'#runs tr[data-run-id="{run.id}"] [data-field="steps_done"]'
    steps_cell = f"return document.querySelector('{selector}').textContent"
    open_page(browser, dashboard_url + "/")
    assert browser.execute_script(steps_cell) == "100 / 400"
    browser.execute_script("window.sameDocument = true")
    record(repository, run.id, claimed.attempt, 101, 200)
    wait_for(browser, steps_cell, "200 / 400")
    assert browser.execute_script("return window.sameDocument") is True

    open_page(browser, f"{dashboard_url}/runs/{run.id}", charts=2)
    last_step = "return document.getElementById('loss-chart').dataset.lastStep"
    assert browser.execute_script(last_step) == "200"
    browser.execute_script("window.sameDocument = true")
    record(repository, run.id, claimed.attempt, 201, 300)
    wait_for(browser, last_step, "300")
    wait_for(browser, "return document.getElementById('accuracy-chart').dataset.lastStep", "300")
    assert browser.execute_script("return window.sameDocument") is True
    assert "300 steps done" in browser.find_element(By.ID, "run-steps").text
    browser.save_screenshot(str(screenshots / "run-live.png"))
    assert console_problems(browser) == []


def test_a_run_page_opened_before_the_first_chunk_shows_the_device_once_it_runs(
    browser: WebDriver, dashboard_url: str, home: Path, trained: Trained
) -> None:
    repository = home_repository(home)
    run = repository.create_run(
        kind=JobKind.TRAIN,
        config={"steps": 400, "learning_rate": 0.01, "chunk_steps": 100},
        seed=1,
        queue="trainq",
        max_attempts=1,
        name="device",
    )
    claimed = repository.claim_run(
        run.id, owner="test-worker", worker_host="test-host", lease_ttl_s=LEASE_TTL_S
    )
    assert claimed is not None
    open_page(browser, f"{dashboard_url}/runs/{run.id}", charts=2)
    device = "return document.getElementById('run-device').textContent"
    assert browser.execute_script(device) == "-"

    steps = np.arange(1, 101, dtype=np.float32)
    chunk = MetricChunk(first_step=1, loss=1 / steps, accuracy=1 - 1 / steps)
    repository.record_chunk(
        run.id, claimed.attempt, chunk, lease_ttl_s=LEASE_TTL_S, device="GPU:0 (test card)"
    )

    wait_for(browser, device, "GPU:0 (test card)")
    assert console_problems(browser) == []
