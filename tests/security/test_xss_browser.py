"""Hostile lead data in real Chromium (issue 7, item 8): the board, a lead, the reject dialog, the
reports and the admin pages load with names like <script>window.__xss=1</script> and
<img src=x onerror=window.__xss=1>, and no script runs. Any Content-Security-Policy violation — what
an injected inline script or handler would cause — fails the test too, as in tests/browser.

Playwright runs in a thread of its own: its sync API refuses to start while another sync Playwright is
alive in the same thread, and tests/browser keeps its session-wide browser open in the main thread.
"""

import os
import re
import threading

import pytest

from handoff.models import Handoff
from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.conftest import skip_or_fail
from tests.security import hostile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

NO_SCRIPT_RAN = "() => window.__xss === undefined && !document.querySelector('script:not([src]):not([type])')"


@pytest.fixture
def data(transactional_db):
    if not os.path.exists(CHROMIUM):
        skip_or_fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -r requirements.txt)")
    return hostile.build()


def in_own_thread(script, timeout=300):
    outcome = {}

    def run():
        try:
            script()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="playwright")
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the browser script did not finish within {timeout}s"
    if "error" in outcome:
        raise outcome["error"]


def test_hostile_names_render_as_text_and_run_nothing(data, live_server):
    mql = Handoff.objects.get(pk=data["handoffs"][0])
    rejected = data["handoffs"][3]
    model_id = data["model"].pk
    base = live_server.url
    problems = []

    def script():
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1366, "height": 800})
            context.set_default_timeout(10_000)
            page = context.new_page()
            page.on(
                "console", lambda msg: "Content Security Policy" in msg.text and problems.append(msg.text)
            )
            page.on("pageerror", lambda exc: problems.append(str(exc)))

            def sign_in(username):
                context.clear_cookies()
                page.goto(f"{base}/login/")
                page.get_by_label("Username").fill(username)
                page.get_by_label("Password").fill(hostile.PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_load_state()

            def visit(path):
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                assert page.evaluate(NO_SCRIPT_RAN), f"a script ran on {path}"

            try:
                sign_in("sdr-hostile")
                visit("/board/")
                card = page.locator(f'article[data-handoff-id="{mql.pk}"]')
                assert hostile.SCRIPT in card.locator(".name").inner_text()  # shown as text, literally
                card.get_by_role("button", name="Reject").click()
                page.locator(f"#handoff-{mql.pk}-dialog").get_by_role("button", name="Reject").wait_for()
                assert page.evaluate(NO_SCRIPT_RAN), "a script ran in the reject dialog"
                page.keyboard.press("Escape")
                visit("/board/?view=closed")
                visit(f"/leads/{mql.lead_id}/")
                assert hostile.IMG in page.locator("body").inner_text()

                sign_in("manager-hostile")
                for path in (
                    "/board/",
                    f"/leads/{mql.lead_id}/",
                    "/reports/",
                    "/reports/acceptance/",
                    "/reports/rules/",
                    "/reports/cost/",
                    "/reports/sdrs/",
                    "/admin/handoff/transition/",
                ):
                    visit(path)

                sign_in("marketer-hostile")
                for path in (
                    "/admin/leads/lead/",
                    f"/admin/leads/lead/{mql.lead_id}/change/",
                    "/admin/handoff/handoff/",
                    f"/admin/handoff/handoff/{rejected}/change/",
                    "/admin/handoff/rejectionreason/",
                    f"/admin/scoring/scoringmodel/{model_id}/change/",
                ):
                    visit(path)
            finally:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                name = re.sub(r"[^\w.-]+", "_", "test_hostile_names_render_as_text_and_run_nothing")
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
                context.close()
                browser.close()

    in_own_thread(script)
    assert not problems, problems
