"""The dashboard under test: real runs trained embedded, the real `trainq dashboard` command
serving them, and the system's headless Chromium driven by Selenium.

One home, one server and one browser for the whole package: training is the slow part.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from storage import Database, Repository
from tests.cli.conftest import embedded_env
from tests.services import CHROMEDRIVER, CHROMIUM, require_chromium

#: A run name that would run script if any page put it into the HTML unescaped.
HOSTILE_NAME = '<script>window.trainqXss=1</script><img src=x onerror="window.trainqXss=2">'

SWEEP = """
name: dashboard-sweep
metric: {name: val_accuracy, goal: maximize}
method: random
seed: 5
run_cap: 4
max_concurrent: 2
val_size: 1000
parameters:
  lr:         {distribution: log_uniform, min: 0.001, max: 0.5}
  batch_size: {values: [32, 128]}
  steps:      {value: 200}
  chunk_steps: {value: 50}
  checkpoint_every: {value: 50}
early_terminate: {type: asha, min_steps: 50, reduction_factor: 2}
"""


@dataclass(frozen=True)
class Trained:
    """What the package's home holds: ids of the runs, the eval job and the sweep."""

    hostile_run: int  # named HOSTILE_NAME, tagged team=a, evaluated on test
    plain_run: int  # tagged team=b, another learning rate
    eval_job: int  # the evaluation job of hostile_run (not a training run)
    sweep_id: int
    trial_runs: tuple[int, ...]


def trainq_json(home: Path, *args: str) -> Any:
    """Run `trainq ARGS... --json` embedded in ``home`` and parse its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "api_cli", *args, "--json"],
        env=embedded_env(home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="package")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dashboard-home")


@pytest.fixture(scope="package")
def trained(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Short real runs, an evaluation and a sweep, through trainq's normal embedded path."""
    common = ("--steps", "200", "--chunk-steps", "50", "--checkpoint-every", "100")
    hostile = trainq_json(home, "train", *common, "--name", HOSTILE_NAME, "--tag", "team=a")
    plain = trainq_json(
        home, "train", *common, "--lr", "0.05", "--name", "plain", "--tag", "team=b"
    )
    trainq_json(home, "eval", str(hostile["id"]))
    sweep_file = tmp_path_factory.mktemp("sweep") / "sweep.yaml"
    sweep_file.write_text(SWEEP)
    sweep = trainq_json(home, "sweep", "start", str(sweep_file))
    return Trained(
        hostile_run=hostile["id"],
        plain_run=plain["id"],
        eval_job=home_repository(home).list_evaluation_jobs()[0].id,
        sweep_id=sweep["id"],
        trial_runs=tuple(t["run_id"] for t in sweep["trials"]),
    )


def home_repository(home: Path) -> Repository:
    """A read-write repository on the home's database, as a worker in this process would use."""
    return Repository(Database(f"sqlite:///{home / 'trainq.db'}"))


@dataclass(frozen=True)
class Answer:
    """What the served dashboard answered: the status, the body, and the body as JSON."""

    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Served:
    """Plain GETs to the served dashboard (what a page says; the browser tests what it draws)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str) -> Answer:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode())


@pytest.fixture(scope="package")
def client(dashboard_url: str) -> Served:
    return Served(dashboard_url)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="package")
def dashboard_url(home: Path, trained: Trained) -> Iterator[str]:
    """`trainq dashboard` serving the home, as a user starts it; stopped at the end."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "api_cli", "dashboard", "--port", str(port)],
        env=embedded_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, server)
        yield url
    finally:
        server.terminate()
        server.communicate(timeout=30)  # reaps it and closes its pipes


def _wait_until_serving(url: str, server: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"trainq dashboard exited {server.returncode}: {server.stderr.read()}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"trainq dashboard did not answer at {url} within {timeout_s} s")


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile, its console log readable."""
    require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save what the pages looked like (printed at the end of the session)."""
    return tmp_path_factory.mktemp("dashboard-screenshots")


def open_page(browser: WebDriver, url: str, *, charts: int = 0) -> None:
    """Load ``url`` and wait until it has drawn ``charts`` charts (with data or a note)."""
    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda driver: driver.execute_script("return document.readyState") == "complete"
    )
    if charts:
        WebDriverWait(browser, 30).until(
            lambda driver: (
                len(driver.find_elements("css selector", ".chart[data-points]")) >= charts
            )
        )


def follow(browser: WebDriver, selector: str, *, charts: int = 0) -> None:
    """Click the link or button at ``selector`` and wait for the page it leads to (a click
    returns before the navigation happens; reading the old page then would be a race)."""
    before = browser.current_url
    browser.find_element("css selector", selector).click()
    WebDriverWait(browser, 30).until(lambda driver: driver.current_url != before)
    open_page(browser, browser.current_url, charts=charts)


def console_problems(browser: WebDriver) -> list[str]:
    """Errors and warnings the page logged since the last call (the log is drained)."""
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING")
    ]
