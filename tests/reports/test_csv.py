"""CSV downloads: the same numbers as the page, one table at a time, safe to open in a spreadsheet."""

import pytest

from handoff.models import RejectionReason
from handoff.reports.csv import safe_cell
from handoff.reports.views import REPORTS
from tests.reports import history
from tests.reports.history import RANGE
from tests.reports.pages import csv_dicts, get_csv, get_page

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("slug", [r.slug for r in REPORTS])
def test_every_table_on_the_page_and_in_csv_agree(story, mgr, slug):
    url = f"/reports/{slug}/"
    page = get_page(mgr, url, **RANGE, **({"band": "20"} if slug == "calibration" else {}))
    tables = [t for t in page._tables]
    assert tables, "every report has at least one table"
    for table in tables:
        rows = get_csv(mgr, url, table=table, **RANGE, **({"band": "20"} if slug == "calibration" else {}))
        header = [h.removesuffix(" (%)").removesuffix(" (hours)") for h in rows[0]]
        assert header == page.rows(table)[0], table
        assert rows[1:] == page.values(table), table
    if page.figures:
        summary = csv_dicts(get_csv(mgr, url, table="summary", **RANGE))
        shown = [summary_row["Value"] for summary_row in summary.values()]
        assert shown == [f["value"] for f in page.figures.values()]


def test_every_table_has_a_download_link_that_keeps_the_filters(story, mgr):
    html = get_page(mgr, "/reports/acceptance/", source="paid", **RANGE).html
    for table in ("summary", "reasons", "by_source", "by_campaign", "by_version", "weekly"):
        assert f"?from=2025-02-24&amp;to=2025-03-20&amp;source=paid&amp;format=csv&amp;table={table}" in html


def test_the_download_is_an_attachment_with_a_sensible_name(story, mgr):
    response = mgr.get("/reports/funnel/", {"format": "csv", "table": "sources", **RANGE})
    assert response["Content-Disposition"] == 'attachment; filename="accord-funnel-sources-20250224-20250320.csv"'
    assert response["Content-Type"] == "text/csv; charset=utf-8"


def test_without_a_table_parameter_the_main_table_downloads(story, mgr):
    response = mgr.get("/reports/funnel/", {"format": "csv", **RANGE})
    assert "accord-funnel-cohorts-" in response["Content-Disposition"]


def test_an_unknown_table_is_404(story, mgr):
    assert mgr.get("/reports/funnel/", {"format": "csv", "table": "nope", **RANGE}).status_code == 404


def test_an_empty_period_downloads_a_message_not_zeros(story, mgr):
    rows = get_csv(mgr, "/reports/speed/", **{"from": "2025-01-01", "to": "2025-01-31"})
    assert rows == [["message"], ["No MQLs in this period"]]


@pytest.mark.parametrize(
    "raw, safe",
    [
        ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
        ("+SUM(1,2)", "'+SUM(1,2)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("-10.0", "-10.0"),  # a plain number cannot be a formula: it stays a number
        ("Search A", "Search A"),
        ("", ""),
    ],
)
def test_formula_like_cells_are_neutralized(raw, safe):
    assert safe_cell(raw) == safe


def test_formula_injection_through_names_is_neutralized_in_downloads(mgr, sdr, sdr2, manager):
    history.build(campaign_names=('=HYPERLINK("http://evil","x")', "+Social", "@Webinar"))
    RejectionReason.objects.filter(code="no_budget").update(label="-1+cmd|' /C calc'!A0")
    campaigns = csv_dicts(get_csv(mgr, "/reports/cost/", table="by_campaign", **RANGE))
    assert set(campaigns) == {"'=HYPERLINK(\"http://evil\",\"x\")", "'+Social", "'@Webinar", "Total"}
    reasons = csv_dicts(get_csv(mgr, "/reports/acceptance/", table="reasons", **RANGE))
    assert "'-1+cmd|' /C calc'!A0" in reasons
    # The page itself shows the names as typed (HTML-escaped, not executed anywhere).
    assert "=HYPERLINK(&quot;http://evil&quot;,&quot;x&quot;)" in get_page(mgr, "/reports/cost/", **RANGE).html
