"""The run page's accuracy chart names a validation series only where the run holds images out,
and the queue page counts and lists evaluation jobs beside training runs."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from storage.records import JobKind
from tests.dashboard.conftest import Trained, console_problems, home_repository, open_page


def accuracy_legend(browser: WebDriver, dashboard_url: str, run_id: int) -> list[str]:
    open_page(browser, f"{dashboard_url}/runs/{run_id}", charts=2)
    chart = browser.find_element(By.ID, "accuracy-chart")
    return [label.text for label in chart.find_elements(By.CSS_SELECTOR, ".u-legend .u-label")]


def test_a_run_without_a_validation_split_has_no_validation_legend(
    browser: WebDriver, dashboard_url: str, trained: Trained
) -> None:
    legend = accuracy_legend(browser, dashboard_url, trained.plain_run)

    assert "training accuracy" in legend
    assert "validation accuracy" not in legend
    title = browser.find_element(By.CSS_SELECTOR, "#accuracy-chart .u-title").text
    assert "validation" not in title
    assert console_problems(browser) == []


def test_a_trial_holding_images_out_keeps_its_validation_legend(
    browser: WebDriver, dashboard_url: str, trained: Trained
) -> None:
    legend = accuracy_legend(browser, dashboard_url, trained.trial_runs[0])

    assert {"training accuracy", "validation accuracy"} <= set(legend)
    assert console_problems(browser) == []


def test_the_queue_page_counts_and_lists_evaluation_jobs(
    browser: WebDriver, dashboard_url: str, home: Path, trained: Trained, screenshots: Path
) -> None:
    repository = home_repository(home)
    job = repository.create_evaluation_job(
        run_id=trained.plain_run, checkpoint_step=200, split="test", queue="eval", max_attempts=3
    )
    try:
        open_page(browser, dashboard_url + "/queue")
        counts = browser.find_element(By.ID, "runs-by-status")
        header = [th.text for th in counts.find_elements(By.CSS_SELECTOR, "thead th")]
        assert header == ["status", "training runs", "evaluation jobs"]
        rows = {
            row.find_element(By.TAG_NAME, "th").text: [
                td.text for td in row.find_elements(By.TAG_NAME, "td")
            ]
            for row in counts.find_elements(By.CSS_SELECTOR, "tr")
            if row.find_elements(By.TAG_NAME, "td")
        }
        assert rows["queued"][1] == "1"
        assert int(rows["succeeded"][1]) >= 1  # the fixture's evaluation
        assert "Queued (1)" in browser.find_element(By.TAG_NAME, "body").text
        queued = browser.find_element(By.CSS_SELECTOR, "#queued tr.kind-eval")
        assert queued.text.startswith(f"eval {job.id}")
        assert f"evaluates run {trained.plain_run} (step 200) on the test split" in queued.text
        link = queued.find_element(By.TAG_NAME, "a").get_attribute("href") or ""
        assert link.endswith(f"/runs/{trained.plain_run}")
        browser.save_screenshot(str(screenshots / "queue-with-evaluation.png"))
        assert console_problems(browser) == []
    finally:
        repository.cancel_job(job.id, kind=JobKind.EVAL)
