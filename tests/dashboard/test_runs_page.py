"""The runs page as a team uses it: sorted by any column through the URL, the query language of
`trainq runs list --where` in a box (a mistake shown beside it, never a 500), the hyperparameters
that differ as columns, archived runs hidden until asked for, and notes shown."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.dashboard.conftest import (
    Served,
    Trained,
    console_problems,
    follow,
    home_repository,
    open_page,
)

NOTE = "lr too high <b>really</b>"


def ids(client: Served, query: str) -> list[int]:
    answer = client.get("/api/runs?" + query)
    assert answer.status_code == 200, answer.text
    return [row["id"] for row in answer.json()["rows"]]


def header_link(page: str, label: str) -> str:
    """The href of the header cell labelled ``label`` (HTML-unescaped)."""
    match = re.search(r'<th class="sortable[^"]*"[^>]*><a href="([^"]+)">' + label + "</a>", page)
    assert match, label
    return html.unescape(match.group(1))


@pytest.fixture
def annotated(home: Path, trained: Trained) -> Iterator[Trained]:
    """The plain run archived and the hostile one noted, put back as they were afterwards."""
    repository = home_repository(home)
    repository.archive_runs([trained.plain_run])
    repository.set_run_note(trained.hostile_run, NOTE)
    try:
        yield trained
    finally:
        repository.unarchive_runs([trained.plain_run])
        repository.set_run_note(trained.hostile_run, None)


def test_a_column_sorts_on_the_server_and_its_header_link_reverses_it(
    client: Served, home: Path, trained: Trained
) -> None:
    trials = home_repository(home).list_runs(sweep_id=trained.sweep_id)
    accuracy = {run.id: float(run.train_summary.final_accuracy) for run in trials}  # type: ignore[union-attr, arg-type]
    best_first = sorted(accuracy, key=lambda run_id: -accuracy[run_id])
    query = f"sweep={trained.sweep_id}&sort=-accuracy"
    assert ids(client, query) == best_first
    assert ids(client, f"sweep={trained.sweep_id}&sort=accuracy") == best_first[::-1]
    assert ids(client, query + "&per_page=1&page=2") == best_first[1:2]  # pages keep the sort

    page = client.get("/?" + query).text
    assert header_link(page, "accuracy") == f"/?sweep={trained.sweep_id}&sort=accuracy&page=1"
    assert header_link(page, "id") == f"/?sweep={trained.sweep_id}&sort=-id&page=1"
    assert '<span class="arrow">▼</span>' in page


def test_the_hyperparameters_that_differ_among_the_shown_runs_get_sortable_columns(
    client: Served, trained: Trained
) -> None:
    data = client.get(f"/api/runs?sweep={trained.sweep_id}").json()
    names = [column["name"] for column in data["hyperparameters"]]
    assert names == ["learning_rate", "batch_size"]  # the rest is the same for every trial
    labels = [cell["label"] for cell in data["header"]]
    assert labels[labels.index("test acc") + 1 : labels.index("data")] == ["lr", "batch"]
    for row in data["rows"]:
        assert row["hyperparameters"][1] in ("32", "128")
    by_lr = ids(client, f"sweep={trained.sweep_id}&sort=learning_rate")
    lrs = [
        float(r["hyperparameters"][0])
        for r in client.get(f"/api/runs?sweep={trained.sweep_id}&sort=learning_rate").json()["rows"]
    ]
    assert lrs == sorted(lrs) and len(by_lr) == 4
    both = client.get(
        f"/api/runs?q={quote('id in ' + str((trained.hostile_run, trained.plain_run)))}"
    )
    assert [c["name"] for c in both.json()["hyperparameters"]] == ["learning_rate"]


def test_the_query_box_takes_the_query_language_and_combines_with_the_filters(
    client: Served, trained: Trained
) -> None:
    query = quote("val_accuracy > 0 and trial >= 0")
    assert sorted(ids(client, f"q={query}")) == sorted(trained.trial_runs)
    named = quote("name like 'pla%' or tags.team = 'a'")
    assert sorted(ids(client, f"q={named}")) == sorted([trained.hostile_run, trained.plain_run])
    assert ids(client, f"q={named}&tag=team%3Db") == [trained.plain_run]
    assert ids(client, "q=" + quote("test_accuracy is not null")) == [trained.hostile_run]
    assert (
        'value="name like &#39;pla%&#39; or tags.team = &#39;a&#39;"'
        in client.get(f"/?q={named}").text
    )  # the box keeps what was typed


def test_a_query_mistake_is_shown_beside_the_box_with_its_column_not_a_500(
    client: Served,
) -> None:
    answer = client.get("/?q=" + quote("val_accuracy > 0.84 and lr < 'a'"))
    assert answer.status_code == 400
    assert 'id="query-error"' in answer.text
    assert "lr is a number" in answer.text and "(column 30)" in answer.text
    assert "val_accuracy &gt; 0.84 and lr &lt; &#39;a&#39;\n" + " " * 29 + "^" in answer.text
    assert 'id="filter-query"' in answer.text and 'aria-invalid="true"' in answer.text
    unknown = client.get("/api/runs?q=" + quote("val_acc > 1")).json()
    assert unknown["field"] == "q" and unknown["column"] == 1
    assert "did you mean val_accuracy" in unknown["message"]
    sort = client.get("/api/runs?sort=-nope")
    assert sort.status_code == 400 and sort.json()["field"] == "sort"
    too_long = client.get("/api/runs?q=" + "x" * 2001)
    assert too_long.status_code == 400 and "at most 2,000" in too_long.json()["error"]


def test_archived_runs_are_hidden_until_asked_for_and_notes_are_shown(
    client: Served, annotated: Trained
) -> None:
    trained = annotated
    assert trained.plain_run not in ids(client, "")
    assert trained.plain_run in ids(client, "archived=show")
    assert ids(client, "archived=only") == [trained.plain_run]
    page = client.get("/?archived=show").text
    assert re.search(rf'<tr data-run-id="{trained.plain_run}" class="[^"]*archived', page)
    assert "archived ones hidden" in client.get("/").text
    assert f'data-field="note" title="{html.escape(NOTE)}">{html.escape(NOTE)}</div>' in (
        client.get("/").text.replace("&#34;", '"')
    )
    assert client.get("/api/runs").json()["rows"][-1]["note"] == NOTE  # oldest: the hostile run
    assert client.get("/?archived=all").status_code == 400


def test_in_the_browser_a_header_click_sorts_and_the_query_box_filters(
    browser: WebDriver, dashboard_url: str, trained: Trained, screenshots: Path
) -> None:
    open_page(browser, f"{dashboard_url}/?sweep={trained.sweep_id}")
    follow(browser, '#runs th[data-sort="val_accuracy"] a')
    assert "sort=-val_accuracy" in browser.current_url
    shown = [
        float(cell.text)
        for cell in browser.find_elements(By.CSS_SELECTOR, '#runs [data-field="val_accuracy"]')
    ]
    assert shown == sorted(shown, reverse=True) and len(shown) == 4
    assert browser.find_elements(By.CSS_SELECTOR, '#runs td.hyper[data-hyper="learning_rate"]')
    browser.save_screenshot(str(screenshots / "runs-sorted.png"))

    box = browser.find_element(By.ID, "filter-query")
    box.clear()
    box.send_keys("lr < 'a'")
    follow(browser, "#filter-apply")
    error = browser.find_element(By.ID, "query-error").text
    assert "lr is a number" in error and "(column 6)" in error
    browser.save_screenshot(str(screenshots / "runs-query-error.png"))
    console_problems(browser)  # the 400 itself is logged by Chromium, as it should be
