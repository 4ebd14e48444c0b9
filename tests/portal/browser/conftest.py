"""What the browser tests share: Debian's Chromium driven by Playwright (no browser is ever downloaded), a fresh
page per test that records dialogs (an injected script that ran) and Content-Security-Policy refusals, and logging
in through the login form.

Without Chromium these tests skip, unless CI is set, where they fail."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

try:
    from playwright import sync_api
except ImportError:  # each test module skips itself (importorskip); nothing here may fail to import
    sync_api = None

CHROMIUM = os.environ.get("ACCELDOCTOR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000


class Served:
    """A running `acceldoctor serve`: its URL, a token per role, and the run id of each report uploaded, by host."""

    def __init__(self, url: str, tokens: dict[str, str], run_ids: dict[str, str]):
        self.url, self.tokens, self.run_ids = url, tokens, run_ids


@pytest.fixture(scope="session")
def browser():
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI is set: the browser tests must run (.ci/run installs it)", pytrace=False)
        pytest.skip(reason)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    opened.dialogs, opened.csp_errors = [], []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    opened.on("console", lambda message: opened.csp_errors.append(message.text)
              if "Content Security Policy" in message.text else None)
    yield opened
    context.close()


def log_in(page, served: Served, role: str, then: str = "/") -> None:
    page.goto(served.url + then)
    assert "/login" in page.url  # no public read: pages send a stranger to the login page
    page.fill("input[name=token]", served.tokens[role])
    page.click("button:has-text('Log in')")
    page.wait_for_url(served.url + then)
