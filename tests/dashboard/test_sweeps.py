"""The sweeps index and a sweep's parallel coordinates, over the package's real ASHA sweep: what
the pages and their JSON say (plain GETs to the served dashboard), and what Chromium draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.dashboard.conftest import (
    Served,
    Trained,
    console_problems,
    home_repository,
    open_page,
)
from worker.sweep_report import sweep_report


def report_json(home: Path, sweep_id: int) -> dict[str, Any]:
    return sweep_report(home_repository(home), sweep_id).to_json()


def wait_for_attribute(browser: WebDriver, element: WebElement, name: str, value: str) -> None:
    WebDriverWait(browser, 10).until(lambda _: element.get_attribute(name) == value)


def test_every_page_links_to_the_sweeps_index(client: Served, trained: Trained) -> None:
    for page in ("/", "/queue", f"/sweeps/{trained.sweep_id}", f"/runs/{trained.plain_run}"):
        assert '<a href="/sweeps" id="nav-sweeps">sweeps</a>' in client.get(page).text, page


def test_the_sweeps_index_counts_done_pruned_and_planned_trials_and_names_the_best(
    client: Served, home: Path, trained: Trained
) -> None:
    report = report_json(home, trained.sweep_id)
    [row] = client.get("/api/sweeps").json()["rows"]
    assert row["id"] == trained.sweep_id and row["name"] == "dashboard-sweep"
    assert row["status"] == "succeeded"
    assert row["trials_total"] == row["trials_done"] == 4
    assert row["trials_pruned"] == sum(t["pruned"] for t in report["trials"]) >= 1
    assert row["best"] == report["best_objective"] and row["best_run_id"] == report["best_run_id"]
    page = client.get("/sweeps")
    assert page.status_code == 200
    assert f'<a href="/sweeps/{trained.sweep_id}">dashboard-sweep</a>' in page.text
    assert f'<a href="/runs/{report["best_run_id"]}">run {report["best_run_id"]}</a>' in page.text


def test_a_sweeps_page_past_the_last_is_empty_and_a_bad_page_is_a_400(
    client: Served,
) -> None:
    assert client.get("/api/sweeps?page=2").json()["rows"] == []
    refused = client.get("/sweeps?page=0")
    assert refused.status_code == 400
    assert "page=&#39;0&#39; must be a whole number from 1" in refused.text  # escaped


def test_parallel_coordinates_put_each_varying_parameter_on_its_kind_of_axis(
    client: Served, home: Path, trained: Trained
) -> None:
    data = client.get(f"/api/sweeps/{trained.sweep_id}/parallel").json()
    axes = {axis["name"]: axis for axis in data["axes"]}
    assert list(axes) == ["lr", "batch_size", "val_accuracy"]  # constants have no axis
    assert axes["lr"]["kind"] == "log" and 0.001 <= axes["lr"]["low"] < axes["lr"]["high"] <= 0.5
    assert axes["batch_size"] == {
        "name": "batch_size",
        "kind": "categorical",
        "categories": ["32", "128"],
    }  # file order, not 0-1
    assert axes["val_accuracy"]["metric"] and axes["val_accuracy"]["maximize"]
    report = report_json(home, trained.sweep_id)
    by_trial = {t["trial"]: t for t in report["trials"]}
    assert sorted(line["trial"] for line in data["trials"]) == sorted(by_trial)
    for line in data["trials"]:
        trial = by_trial[line["trial"]]
        assert line["values"] == [
            trial["params"]["lr"],
            str(trial["params"]["batch_size"]),
            trial["objective"],
        ]
        assert line["pruned"] == trial["pruned"]
        assert line["best"] == (trial["run_id"] == report["best_run_id"])
    assert data["unscored"] == 0
    assert client.get("/api/sweeps/999999/parallel").status_code == 404


def test_pruned_trials_are_marked_on_the_runs_page_the_run_page_and_the_sweep_page(
    client: Served, home: Path, trained: Trained
) -> None:
    report = report_json(home, trained.sweep_id)
    pruned = [t for t in report["trials"] if t["pruned"]]
    rows = {row["id"]: row for row in client.get("/api/runs").json()["rows"]}
    for trial in report["trials"]:
        expected = trial["steps_done"] if trial["pruned"] else None
        assert rows[trial["run_id"]]["pruned_at"] == expected
    runs_page = client.get(f"/?sweep={trained.sweep_id}").text
    assert runs_page.count(">pruned at 50</span>") == len(pruned)
    run_page = client.get(f"/runs/{pruned[0]['run_id']}").text
    assert 'id="run-pruned"' in run_page and "pruned at step 50" in run_page
    sweep_page = client.get(f"/sweeps/{trained.sweep_id}").text
    assert sweep_page.count('<span class="badge pruned">pruned at 50</span>') == len(pruned)


def test_the_parallel_coordinates_draw_one_line_per_trial_pruned_ones_visible(
    browser: WebDriver, dashboard_url: str, home: Path, trained: Trained, screenshots: Path
) -> None:
    report = report_json(home, trained.sweep_id)
    open_page(browser, f"{dashboard_url}/sweeps/{trained.sweep_id}", charts=1)
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "parallel").get_attribute("data-lines")
    )
    lines = browser.find_elements(By.CSS_SELECTOR, "#parallel svg path.trial-line")
    drawn = sorted(int(line.get_attribute("data-trial") or -1) for line in lines)
    assert drawn == sorted(t["trial"] for t in report["trials"])  # one line per trial
    for line in lines:
        assert (line.get_attribute("d") or "").count("L") == 2  # lr -> batch_size -> metric
    pruned = browser.find_elements(By.CSS_SELECTOR, "#parallel svg path.trial-line.pruned")
    assert len(pruned) == sum(t["pruned"] for t in report["trials"]) >= 1
    for line in pruned:  # pruned at the first rung, and still drawn as a visible dashed line
        style = browser.execute_script(
            "const s = getComputedStyle(arguments[0]);"
            "return [s.strokeDasharray, s.opacity, s.strokeWidth, s.stroke];",
            line,
        )
        assert style[0] not in ("", "none") and float(style[1]) >= 0.5
        assert float(style[2].rstrip("px")) >= 1 and style[3] != "none"
        assert line.size["width"] > 100  # spans the plot
    [best] = browser.find_elements(By.CSS_SELECTOR, "#parallel svg path.trial-line.best")
    assert best.get_attribute("data-trial") == str(
        next(t["trial"] for t in report["trials"] if t["run_id"] == report["best_run_id"])
    )
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#parallel .axis-name")]
    assert names == ["lr (log)", "batch_size", "val_accuracy ↑"]
    ticks = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "#parallel .tick")}
    assert {"32", "128"} <= ticks
    browser.save_screenshot(str(screenshots / "sweep-parallel.png"))
    assert console_problems(browser) == []


def test_a_curve_redraws_on_a_log_scale_and_back(
    browser: WebDriver, dashboard_url: str, trained: Trained
) -> None:
    open_page(browser, f"{dashboard_url}/runs/{trained.plain_run}", charts=2)
    chart = browser.find_element(By.ID, "loss-chart")
    toggle = chart.find_element(By.CSS_SELECTOR, ".log-toggle input")
    for expected in ("true", "false"):
        toggle.click()
        wait_for_attribute(browser, chart, "data-log", expected)
        assert len(chart.find_elements(By.TAG_NAME, "canvas")) == 1
    assert console_problems(browser) == []


def test_the_sweeps_index_in_the_browser(
    browser: WebDriver, dashboard_url: str, trained: Trained, screenshots: Path
) -> None:
    open_page(browser, dashboard_url + "/")
    browser.find_element(By.ID, "nav-sweeps").click()
    WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith("/sweeps"))
    row = browser.find_element(By.CSS_SELECTOR, f'#sweeps tr[data-sweep-id="{trained.sweep_id}"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-field="trials_total"]').text == "4"
    browser.save_screenshot(str(screenshots / "sweeps.png"))
    assert console_problems(browser) == []


def test_an_archived_sweep_leaves_the_index_until_asked_for(
    client: Served, home: Path, trained: Trained
) -> None:
    repository = home_repository(home)
    repository.archive_sweep(trained.sweep_id)
    try:
        hidden = client.get("/api/sweeps").json()
        assert hidden["rows"] == [] and hidden["archived"] == ""
        page = client.get("/sweeps").text
        assert "0 listed, 1 archived hidden" in page
        assert "every sweep is archived" in page
        [shown] = client.get("/api/sweeps?archived=show").json()["rows"]
        assert shown["id"] == trained.sweep_id and shown["archived"]
        [only] = client.get("/api/sweeps?archived=only").json()["rows"]
        assert only["id"] == trained.sweep_id
        listed = client.get("/sweeps?archived=only").text
        assert '<span class="badge archived-badge">archived</span>' in listed
        assert '<option value="only" selected>only</option>' in listed
        refused = client.get("/sweeps?archived=yes")
        assert refused.status_code == 400
        assert "use archived=show (with the others) or archived=only" in refused.text
    finally:
        repository.unarchive_sweep(trained.sweep_id)
    [back] = client.get("/api/sweeps").json()["rows"]
    assert back["id"] == trained.sweep_id and not back["archived"]
