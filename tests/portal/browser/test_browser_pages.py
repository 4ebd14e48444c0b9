"""The portal's pages in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright; no browser is
ever downloaded), against a real `acceldoctor serve` fed by `acceldoctor portal token create` and `acceldoctor
upload`, as people would use them: log in, see the nodes, open the failing one and its problem, file feedback, see
it grouped on the problem, triage as an engineer. And script injected into text is shown, not run.

Without Chromium these tests skip, unless CI is set, where they fail. A full-page screenshot of the fleet page is
kept in $ACCELDOCTOR_TEST_ARTIFACTS (default: test-artifacts/ at the repository root).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.portal.browser.conftest import Served, log_in
from tests.portal.conftest import failing, make_report
from tests.portal.test_cli_portal import create_token, running_portal

pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")

REPO = Path(__file__).resolve().parents[3]
INJECTED = "<script>alert(1)</script>"
INJECTED_ATTRIBUTE = '"><img src=x onerror=alert(1)>'
EVIL_HOST = "evil<script>alert(1)"  # a hostname may not hold "/" (the upload refuses it): an unclosed script


def artifact_dir() -> Path:
    folder = Path(os.environ.get("ACCELDOCTOR_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-portal")
    db = f"sqlite:///{folder / 'portal.db'}"
    tokens = {role: create_token(db, role, f"{role} in browser") for role in ("uploader", "engineer")}
    reports = {
        "gpu-good-01": make_report("gpu-good-01"),
        "gpu-bad-02": make_report("gpu-bad-02", results=[failing()]),
        EVIL_HOST: make_report(EVIL_HOST, results=[
            ("correctness.softmax", "cuda:1", "fail", f"softmax says {INJECTED} and {INJECTED_ATTRIBUTE}")]),
    }
    files = []
    for k, report in enumerate(reports.values()):
        path = folder / f"report-{k}.json"
        path.write_text(json.dumps(report))
        files.append(str(path))
    with running_portal(db, folder) as url:
        uploaded = run_cli("upload", *files, "--url", url, "--token", tokens["uploader"])
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        yield Served(url, tokens, {host: r["run_id"] for host, r in reports.items()})


def test_a_person_triages_a_failing_node_in_the_browser(page, served):
    log_in(page, served, "uploader")
    nodes = page.locator("tr.node-row")
    assert nodes.count() == 3
    assert page.locator("tr.node-row[data-health=problem]").count() == 2
    assert page.get_by_role("link", name="gpu-good-01").is_visible()
    screenshot = artifact_dir() / "portal-fleet.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.get_by_role("link", name="gpu-bad-02").click()
    page.wait_for_url(re.compile(r"/nodes/gpu-bad-02$"))
    assert page.locator("h1 .health-problem").is_visible()
    assert page.get_by_text("float16 matmul wrong at element").first.is_visible()
    page.locator("ul.problem-links a").first.click()
    page.wait_for_url(re.compile(r"/problems/\d+$"))
    problem_url = page.url
    assert page.locator("td.feedback-count").inner_text() == "0 feedback reports"
    assert page.get_by_role("link", name="gpu-bad-02").first.is_visible()
    assert page.get_by_text("Log in").first.is_visible() or page.get_by_text("need the engineer role").is_visible()

    # Feedback about the failing run, from its report page: the form arrives with the run id filled in.
    page.goto(f"{served.url}/reports/{served.run_ids['gpu-bad-02']}")
    assert page.locator(".verdict-bad").is_visible()  # the shared report macro
    page.get_by_role("link", name="file feedback about it").click()
    page.wait_for_url(re.compile(r"/feedback/new"))
    assert page.input_value("input[name=report_run_id]") == served.run_ids["gpu-bad-02"]
    page.fill("input[name=title]", "matmul wrong on X1 after the driver update")
    page.fill("textarea[name=description]", "fp16 only; fp32 is fine")
    page.select_option("select[name=severity]", "high")
    page.click("button:has-text('File feedback')")
    page.wait_for_url(re.compile(r"/feedback/\d+$"))
    assert page.locator("ul.linked-problems li").count() == 1
    page.goto(served.url + "/feedback")
    assert page.locator("tr.feedback-row").count() == 1
    page.goto(problem_url)
    assert page.locator("td.feedback-count").inner_text() == "1 feedback report"
    assert page.get_by_role("link", name="matmul wrong on X1 after the driver update").is_visible()

    # An engineer acknowledges it and comments (htmx posts the forms and swaps the page in place).
    page.click("button:has-text('Log out')")
    page.wait_for_url(re.compile(r"/login"))
    log_in(page, served, "engineer", problem_url.removeprefix(served.url))
    page.select_option("select[name=status]", "acknowledged")
    page.click("button:has-text('Change status')")
    page.locator("h1 .pstatus-acknowledged").wait_for()
    page.fill("textarea[name=body]", "Reproduced on two nodes; driver 550.54 suspected.")
    page.click("button:has-text('Add comment')")
    page.locator(".comment-body", has_text="driver 550.54 suspected").wait_for()
    page.reload()
    assert page.locator("h1 .pstatus-acknowledged").is_visible()
    assert page.dialogs == [] and page.csp_errors == []


def test_injected_script_is_shown_not_run(page, served):
    log_in(page, served, "engineer")
    evil = page.get_by_role("link", name=EVIL_HOST)
    assert evil.is_visible()
    evil.click()
    page.wait_for_url(re.compile(r"/nodes/evil"))
    assert page.get_by_text(f"softmax says {INJECTED} and {INJECTED_ATTRIBUTE}").first.is_visible()
    page.locator("ul.problem-links a").first.click()
    page.wait_for_url(re.compile(r"/problems/\d+$"))
    page.fill("textarea[name=body]", f"comment {INJECTED_ATTRIBUTE}")
    page.click("button:has-text('Add comment')")
    page.locator(".comment-body", has_text=f"comment {INJECTED_ATTRIBUTE}").wait_for()
    page.goto(served.url + "/feedback/new")
    page.fill("input[name=title]", f"title {INJECTED}")
    page.fill("textarea[name=log_excerpt]", f"RuntimeError: {INJECTED_ATTRIBUTE}")
    page.click("button:has-text('File feedback')")
    page.wait_for_url(re.compile(r"/feedback/\d+$"))
    assert page.get_by_text(f"title {INJECTED}").first.is_visible()
    assert page.get_by_text(f"RuntimeError: {INJECTED_ATTRIBUTE}").is_visible()
    for path in ("/", "/problems", "/feedback", f"/reports/{served.run_ids[EVIL_HOST]}"):
        page.goto(served.url + path)
        # (a problem's title is normalized: its numbers are placeholders, so look for the start of the script)
        assert page.get_by_text("<script>alert(").first.is_visible(), path
    assert page.locator("img[src=x]").count() == 0
    assert page.dialogs == [], page.dialogs
    assert page.csp_errors == [], page.csp_errors


def test_a_refused_triage_form_says_why_in_place(page, served):
    """htmx posts the triage forms; when the server refuses (a stale security token, a login that is gone), the
    form shows why, and the page, with what was typed, stays as it was."""
    log_in(page, served, "engineer", "/problems?kind=result")
    page.get_by_role("link", name=re.compile("correctness.matmul")).click()
    page.wait_for_url(re.compile(r"/problems/\d+$"))
    heading = page.locator("h1").inner_text()
    status_form = page.locator("form", has=page.locator("button:has-text('Change status')"))
    status_form.locator("input[name=csrf_token]").evaluate("input => { input.value = 'stale'; }")
    page.select_option("select[name=status]", "resolved")
    page.click("button:has-text('Change status')")
    status_error = status_form.locator(".form-error")
    status_error.filter(has_text="security token").wait_for()
    assert page.locator("h1").inner_text() == heading and page.locator("h1 .pstatus-resolved").count() == 0

    page.context.clear_cookies()  # logged out in another tab
    page.fill("textarea[name=body]", "a long comment nobody wants to type twice")
    page.click("button:has-text('Add comment')")
    comment_error = page.locator("form", has=page.locator("textarea[name=body]")).locator(".form-error")
    comment_error.filter(has_text="not logged in").wait_for()
    assert page.input_value("textarea[name=body]") == "a long comment nobody wants to type twice"
    assert page.locator("h1").inner_text() == heading and page.locator("nav.topnav").count() == 1
    login_link = comment_error.get_by_role("link", name="Log in again")
    assert re.search(r"/login\?next=%2Fproblems%2F\d+$", login_link.get_attribute("href"))
    assert page.dialogs == [] and page.csp_errors == []
