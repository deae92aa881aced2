"""Browser tests: Playwright drives Debian's Chromium (/usr/bin/chromium) against live_server.

Playwright's sync API keeps an event loop running in the test thread; the ORM calls the tests make
are still plain synchronous calls, so Django's async-safety guard is switched off for this folder.
"""

import os
import re
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("ACCORD_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # The machine has no network: keep Chromium from trying (and failing) to phone home.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        skip_or_fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -r requirements.txt)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser tab at laptop size; a screenshot is saved as an artifact after each test."""
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    # Everything must work under the Content-Security-Policy: a blocked script or style is a failure.
    violations = []
    page.on("console", lambda msg: "Content Security Policy" in msg.text and violations.append(msg.text))
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture
def sign_in(page, live_server):
    """sign_in(username, password) through the real login form."""

    def _sign_in(username, password):
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()

    return _sign_in
