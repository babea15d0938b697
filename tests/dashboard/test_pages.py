"""Every dashboard page in headless Chromium, over runs trained for real: what it shows, that its
filters and links work, that nothing a user named executes, and that the console stays clean."""

from __future__ import annotations

import socket
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.dashboard.conftest import (
    HOSTILE_NAME,
    Trained,
    console_problems,
    follow,
    open_page,
)


def listed_run_ids(browser: WebDriver) -> list[int]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr[data-run-id]")
    return [int(row.get_attribute("data-run-id") or 0) for row in rows]


def cell(browser: WebDriver, run_id: int, field: str) -> str:
    selector = f'#runs tr[data-run-id="{run_id}"] [data-field="{field}"]'
    return browser.find_element(By.CSS_SELECTOR, selector).text


def test_the_runs_page_lists_every_training_run_with_its_numbers_and_no_eval_job(
    browser: WebDriver, dashboard_url: str, trained: Trained, screenshots: Path
) -> None:
    open_page(browser, dashboard_url + "/")
    ids = listed_run_ids(browser)
    expected = {trained.hostile_run, trained.plain_run, *trained.trial_runs}
    assert set(ids) == expected  # no evaluation job (ids in their own sequence since 0003)
    assert ids == sorted(ids, reverse=True)  # newest first
    assert cell(browser, trained.hostile_run, "status") == "succeeded"
    assert cell(browser, trained.hostile_run, "steps_done") == "200 / 200"
    assert cell(browser, trained.hostile_run, "device").startswith("CPU")
    for field in ("loss", "accuracy", "test_accuracy"):
        assert float(cell(browser, trained.hostile_run, field)) > 0
    assert cell(browser, trained.plain_run, "test_accuracy") == "-"  # never evaluated
    assert 0 < float(cell(browser, trained.trial_runs[0], "val_accuracy")) <= 1
    browser.save_screenshot(str(screenshots / "runs.png"))
    assert console_problems(browser) == []


def test_a_run_named_like_markup_is_shown_as_text_and_never_executes(
    browser: WebDriver, dashboard_url: str, trained: Trained
) -> None:
    pages = (
        "/",
        f"/runs/{trained.hostile_run}",
        f"/compare?runs={trained.hostile_run},{trained.plain_run}",
        "/queue",
    )
    for page in pages:
        open_page(browser, dashboard_url + page)
        assert browser.execute_script("return window.trainqXss") is None, page
        assert not browser.find_elements(By.CSS_SELECTOR, "main img"), page
    open_page(browser, dashboard_url + "/")
    name_cell = browser.find_element(
        By.CSS_SELECTOR, f'#runs tr[data-run-id="{trained.hostile_run}"] td.name'
    )
    assert name_cell.text == HOSTILE_NAME
    console_problems(browser)  # the <img src=x> never loaded, so nothing to report either


def test_filters_by_status_tag_and_sweep_narrow_the_list(
    browser: WebDriver, dashboard_url: str, trained: Trained
) -> None:
    open_page(browser, dashboard_url + "/")
    browser.find_element(By.ID, "filter-tag").send_keys("team=b")
    follow(browser, "#filter-apply")
    assert listed_run_ids(browser) == [trained.plain_run]
    assert "tag=team%3Db" in browser.current_url

    open_page(browser, dashboard_url + "/")
    browser.find_element(By.ID, "filter-sweep").send_keys(str(trained.sweep_id))
    follow(browser, "#filter-apply")
    assert sorted(listed_run_ids(browser)) == sorted(trained.trial_runs)

    open_page(browser, dashboard_url + "/")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("failed")
    follow(browser, "#filter-apply")
    assert listed_run_ids(browser) == []
    assert "no training run matches" in browser.find_element(By.ID, "runs").text
    assert console_problems(browser) == []


def test_the_runs_list_pages_through_every_run_once(
    browser: WebDriver, dashboard_url: str, trained: Trained
) -> None:
    seen: list[int] = []
    open_page(browser, dashboard_url + "/?per_page=2")
    while True:
        seen += listed_run_ids(browser)
        following = browser.find_elements(By.ID, "page-next")
        if not following:
            break
        follow(browser, "#page-next")
    assert sorted(seen) == sorted({trained.hostile_run, trained.plain_run, *trained.trial_runs})
    assert len(seen) == len(set(seen))
    assert console_problems(browser) == []


def test_a_bad_filter_is_a_clear_400_naming_the_field(
    browser: WebDriver, dashboard_url: str
) -> None:
    open_page(browser, dashboard_url + "/?status=finished")
    message = browser.find_element(By.ID, "error-message").text
    assert "status='finished' is not a status" in message
    assert "succeeded" in message
    console_problems(browser)  # the 400 itself is logged by Chromium, as it should be


def test_the_run_page_shows_curves_hyperparameters_checkpoints_evaluation_and_attempts(
    browser: WebDriver, dashboard_url: str, trained: Trained, screenshots: Path
) -> None:
    open_page(browser, f"{dashboard_url}/runs/{trained.hostile_run}", charts=2)
    loss = browser.find_element(By.ID, "loss-chart")
    assert loss.get_attribute("data-last-step") == "200"
    assert 0 < int(loss.get_attribute("data-points") or 0) <= 1000
    assert loss.find_elements(By.TAG_NAME, "canvas")
    accuracy = browser.find_element(By.ID, "accuracy-chart")
    assert accuracy.find_elements(By.TAG_NAME, "canvas")
    hyper = browser.find_element(By.ID, "hyperparameters").text
    assert "learning_rate" in hyper and "steps 200" in hyper
    steps = browser.find_element(By.ID, "checkpoints").text
    assert "100" in steps and "200" in steps
    evaluation = browser.find_element(By.CSS_SELECTOR, ".evaluation")
    assert "test split, checkpoint 200" in evaluation.text
    assert "Ankle boot" in evaluation.find_element(By.CSS_SELECTOR, ".per-class").text
    confusion = evaluation.find_element(By.CSS_SELECTOR, ".confusion")
    rows = confusion.find_elements(By.CSS_SELECTOR, "tr")
    assert len(rows) == 11  # header + one row per class
    counts = [int(td.text) for td in confusion.find_elements(By.CSS_SELECTOR, "td")]
    assert sum(counts) == 10_000  # the whole test split
    attempts = browser.find_element(By.ID, "attempts").text
    assert "1 of at most" in attempts
    history = browser.find_element(By.ID, "attempt-history")
    [row] = history.find_elements(By.CSS_SELECTOR, "tbody tr")
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "1" and cells[1] == socket.gethostname() and cells[6] == "succeeded"
    assert cells[2].startswith("CPU") and cells[5].endswith("s")
    browser.save_screenshot(str(screenshots / "run.png"))
    assert console_problems(browser) == []


def test_the_sweep_page_shows_trials_rungs_best_and_every_curve(
    browser: WebDriver, dashboard_url: str, trained: Trained, screenshots: Path
) -> None:
    open_page(browser, f"{dashboard_url}/sweeps/{trained.sweep_id}", charts=1)
    trials = browser.find_elements(By.CSS_SELECTOR, "#trials tr[data-trial]")
    assert len(trials) == 4
    pruned = browser.find_elements(By.CSS_SELECTOR, "#trials tr.pruned")
    assert pruned, "ASHA with reduction factor 2 stops some trial at its first rung"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#trials tr.best")) == 1
    assert "best: trial" in browser.find_element(By.ID, "best-trial").text
    decisions = browser.find_element(By.ID, "rungs").text
    assert "continued" in decisions and "stopped" in decisions
    legend = browser.find_element(By.CSS_SELECTOR, "#sweep-chart .u-legend").text
    assert legend.count("trial ") == 4 and "(pruned)" in legend
    scatter = browser.find_element(By.ID, "scatter-lr")
    marks = scatter.find_elements(By.CSS_SELECTOR, "circle, text.pruned-mark")
    assert len(marks) == 4
    browser.save_screenshot(str(screenshots / "sweep.png"))
    assert console_problems(browser) == []


def test_selected_runs_compare_with_their_curves_overlaid_and_differences_first(
    browser: WebDriver, dashboard_url: str, trained: Trained, screenshots: Path
) -> None:
    open_page(browser, dashboard_url + "/")
    for run_id in (trained.hostile_run, trained.plain_run):
        browser.find_element(By.CSS_SELECTOR, f'input[name="run"][value="{run_id}"]').click()
    follow(browser, "#compare-button", charts=2)
    rows = browser.find_elements(By.CSS_SELECTOR, "#comparison tbody tr, #comparison tr")
    labels = [row.find_element(By.TAG_NAME, "th").text for row in rows[1:]]
    assert labels[0] == "name"
    first_hyperparameter = labels[2]
    assert first_hyperparameter.startswith("learning_rate") and "differs" in first_hyperparameter
    legend = browser.find_element(By.CSS_SELECTOR, "#compare-loss .u-legend").text
    assert f"run {trained.hostile_run}" in legend and f"run {trained.plain_run}" in legend
    browser.save_screenshot(str(screenshots / "compare.png"))
    assert console_problems(browser) == []


def test_the_queue_page_says_embedded_has_no_broker_and_counts_jobs(
    browser: WebDriver, dashboard_url: str, screenshots: Path
) -> None:
    open_page(browser, dashboard_url + "/queue")
    assert "no broker configured (embedded)" in browser.find_element(By.ID, "broker-state").text
    counts = browser.find_element(By.ID, "runs-by-status").text
    assert "succeeded" in counts
    assert "nothing is running" in browser.find_element(By.ID, "running").text
    browser.save_screenshot(str(screenshots / "queue.png"))
    assert console_problems(browser) == []
