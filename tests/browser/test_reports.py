"""The reports in real headless Chromium: a manager signs in through the login form and opens every
report, seeded by `seed_demo`. Each page is saved as test-artifacts/browser/report-<name>.png."""

import pytest
from django.core.management import call_command

from handoff.reports.views import REPORTS
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Reports that draw a chart, and the charts they draw.
CHARTS = {
    "funnel": ["chart-funnel", "chart-cohorts"],
    "acceptance": ["chart-acceptance-trend"],
    "speed": ["chart-speed-trend"],
    "cost": ["chart-cost-channel"],
    "calibration": ["chart-calibration"],
}

# Share of a canvas's pixels that are painted (not transparent): bars, lines, axes and labels.
PAINTED = """canvas => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  return painted / (canvas.width * canvas.height);
}"""


@pytest.fixture
def demo(db):
    call_command("seed_demo", "--leads", "400")


def test_a_manager_sees_every_report_filled_from_the_demo_data(demo, page, live_server, sign_in):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    sign_in("manager", "accord-demo")
    page.get_by_role("link", name="Reports").click()
    page.wait_for_url("**/reports/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-index.png"), full_page=True)

    for report in REPORTS:
        page.goto(f"{live_server.url}/reports/{report.slug}/")
        assert page.get_by_role("heading", level=1).inner_text() == report.title
        assert page.locator("text=No MQLs in this period").count() == 0, report.slug
        assert page.locator("table.report tbody tr").count() > 0, report.slug
        for chart in CHARTS.get(report.slug, []):
            canvas = page.locator(f'canvas[data-chart="{chart}"]')
            canvas.wait_for()
            page.wait_for_function(
                "id => document.querySelector(`canvas[data-chart='${id}']`).dataset.drawn === 'true'", arg=chart
            )
            box = canvas.bounding_box()
            assert box["width"] > 300 and box["height"] > 200, (chart, box)
            assert canvas.evaluate(PAINTED) > 0.02, f"{chart} looks empty"
        page.screenshot(path=str(ARTIFACTS / f"report-{report.slug}.png"), full_page=True)
    assert not errors, errors


def test_filters_apply_from_the_filter_bar_and_follow_the_links(demo, page, live_server, sign_in):
    sign_in("manager", "accord-demo")
    page.goto(f"{live_server.url}/reports/acceptance/")
    page.get_by_label("Source", exact=True).select_option("paid")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**source=paid**")
    assert page.locator('table[data-table="by_source"] tbody th').all_inner_texts() == ["Paid"]
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Speed to lead").click()
    page.wait_for_url("**/reports/speed/?**source=paid**")
    assert page.get_by_label("Source", exact=True).input_value() == "paid"


def test_an_empty_period_says_so(demo, page, live_server, sign_in):
    sign_in("manager", "accord-demo")
    page.goto(f"{live_server.url}/reports/funnel/?from=2001-01-01&to=2001-01-31")
    assert page.get_by_role("heading", name="No MQLs in this period").is_visible()
    assert page.locator("canvas").count() == 0
    page.screenshot(path=str(ARTIFACTS / "report-empty.png"), full_page=True)
