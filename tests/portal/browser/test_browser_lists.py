"""Long lists and comparisons in a real Chromium, against a real `acceldoctor serve` fed by `acceldoctor upload`:
an operator filters the problems by status, kind and device model and pages through them with the filters kept,
pages through a node's runs, and opens a comparison's report to see where two training runs first part.

The comparison is a real `acceldoctor.compare/1` document (compare-mlp-bitflip.json: tests/compare's small MLP,
recorded in float32 on the CPU, once as is and once with a bit flipped by `bitflip:1`), kept as a file because
recording it needs torch and takes seconds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.portal.browser.conftest import Served, log_in
from tests.portal.conftest import failing, make_report
from tests.portal.test_cli_portal import create_token, running_portal

pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")

COMPARISON = Path(__file__).with_name("compare-mlp-bitflip.json")
X1_PROBLEMS = 55  # one page of problems is 50
RUNS = 22  # one page of a node's runs is 20


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-lists")
    db = f"sqlite:///{folder / 'portal.db'}"
    tokens = {"uploader": create_token(db, "uploader", "lists in browser")}
    reports = [make_report("x1-node", results=[failing(f"x1.check{k:02d}") for k in range(X1_PROBLEMS)]),
               make_report("y2-node", model="Other Chip Y2", results=[failing("y2.check")]),
               *(make_report("busy-node") for _ in range(RUNS))]
    files = []
    for k, report in enumerate(reports):
        files.append(folder / f"report-{k}.json")
        files[-1].write_text(json.dumps(report))
    with running_portal(db, folder) as url:
        # --host names the node a comparison came from (it names none itself); a check report names its own
        uploaded = run_cli("upload", *map(str, files), str(COMPARISON), "--host", "trainer-01", "--url", url,
                           "--token", tokens["uploader"])
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        yield Served(url, tokens, {})


def shown_problems(page) -> list[str]:
    return page.locator("tr.problem-row strong").all_inner_texts()


def filter_problems(page, **choices: str) -> None:
    for name, value in choices.items():
        page.select_option(f"select[name={name}]", value)
    page.click("button:has-text('Filter')")
    page.wait_for_load_state()


def test_problems_are_filtered_and_paged_with_the_filters_kept(page, served):
    log_in(page, served, "uploader", "/problems")
    assert page.get_by_text(f"{X1_PROBLEMS + 2} problems, most recently seen first").is_visible()
    assert len(shown_problems(page)) == 50

    filter_problems(page, status="unresolved", kind="result", model="Acme Tensor X1")
    page.wait_for_url(re.compile(r"status=unresolved&kind=result&model=Acme\+Tensor\+X1$"))
    first_page = shown_problems(page)
    assert len(first_page) == 50 and all(key.startswith("x1.check") for key in first_page)
    assert page.locator("nav.pager").inner_text().startswith(f"1–50 of {X1_PROBLEMS}")
    page.get_by_role("link", name="next").click()
    page.wait_for_url(re.compile(r"offset=50$"))
    second_page = shown_problems(page)
    assert len(second_page) == X1_PROBLEMS - 50
    assert set(first_page) | set(second_page) == {f"x1.check{k:02d}" for k in range(X1_PROBLEMS)}
    # the form still shows the filters the list is filtered by
    assert [page.input_value(f"select[name={name}]") for name in ("status", "kind", "model")] == [
        "unresolved", "result", "Acme Tensor X1"]
    page.get_by_role("link", name="newer / previous").click()
    page.wait_for_url(re.compile(r"offset=0$"))
    assert shown_problems(page) == first_page

    filter_problems(page, model="Other Chip Y2")
    assert shown_problems(page) == ["y2.check"]
    filter_problems(page, status="", kind="divergence", model="")
    assert shown_problems(page) == ["blocks.0.fc1"]
    filter_problems(page, status="resolved", kind="")
    assert page.get_by_text("No problem matches these filters").is_visible()

    # The fleet's card counts what the list shows when it is followed.
    page.goto(served.url + "/")
    card = page.locator("a.card-problems")
    assert card.inner_text().split() == [str(X1_PROBLEMS + 2), "unresolved", "problems"]
    card.click()
    page.wait_for_url(re.compile(r"/problems\?status=unresolved$"))
    assert page.get_by_text(f"{X1_PROBLEMS + 2} problems,").is_visible()
    assert page.dialogs == [] and page.csp_errors == []


def test_a_nodes_runs_are_paged(page, served):
    log_in(page, served, "uploader", "/nodes/busy-node")
    run_ids = page.locator("a[href^='/reports/'] code")  # the runs table's run ids
    first = run_ids.all_inner_texts()
    pager = page.locator("nav.pager")
    assert len(first) == 20 and pager.inner_text().startswith(f"1–20 of {RUNS}")
    pager.get_by_role("link", name="next").click()
    page.wait_for_url(re.compile(r"runs_offset=20$"))
    assert f"21–{RUNS} of {RUNS}" in page.locator("nav.pager").inner_text()
    rest = run_ids.all_inner_texts()
    assert len(rest) == RUNS - 20 and not set(rest) & set(first)


def test_a_comparison_shows_where_the_runs_first_part(page, served):
    log_in(page, served, "uploader", "/problems?kind=divergence")
    page.get_by_role("link", name=re.compile("blocks.0.fc1")).click()
    page.wait_for_url(re.compile(r"/problems/\d+$"))
    page.get_by_role("link", name="report").first.click()
    page.wait_for_url(re.compile(r"/reports/compare-"))
    assert page.locator("h1").inner_text() == "Comparison (trainer-01): divergent"
    first = page.locator("section.first-divergence")
    assert first.locator(".headline").inner_text() == "First divergence: blocks.0.fc1 (forward)"
    assert "blocks.0.fc1#0/forward/output0" in first.inner_text()
    assert "1.17e+03x what float32 rounding explains" in first.inner_text()
    runs = page.locator("table.compare-runs").inner_text()
    assert "run_a" in runs and "run_b" in runs and "cpu, float32" in runs
    assert page.locator("table >> nth=1").locator("tbody tr").count() == 17  # every divergence, in order
    assert page.dialogs == [] and page.csp_errors == []
