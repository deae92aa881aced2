"""Cost per MQL and per SQL against tests/reports/history.py, worked out by hand.

Search A (search, 1,200): MQLs H2 H3 H11, SQLs H2 H3 → 400.00 per MQL, 600.00 per SQL.
Social B (social, 500): MQLs H7 H8, SQL H7 → 250.00, 500.00.
Webinar C (webinar, 300): MQLs H5 H6, no SQL → 150.00, "—" (not infinity).
All: 2,000 ÷ 7 MQLs = 285.71; ÷ 3 SQLs = 666.67. Without a campaign: H1 H4 H9 H10.
"""

import pytest

from tests.reports.history import RANGE
from tests.reports.pages import csv_dicts, get_csv, get_page

pytestmark = pytest.mark.django_db
URL = "/reports/cost/"


def test_the_headline_figures(story, mgr):
    page = get_page(mgr, URL, **RANGE)
    assert page.figure("cost_sql") == "666.67"
    assert page.figure("cost_mql") == "285.71"
    assert page.figure("spend") == "2,000.00"
    assert page.figure("no_campaign") == "4"


def test_by_campaign_cheapest_sql_first_and_a_dash_without_sqls(story, mgr):
    rows = get_page(mgr, URL, **RANGE).rows("by_campaign")
    assert rows[0] == ["Campaign", "Channel", "Runs", "Spend", "MQLs", "SQLs", "Cost per MQL", "Cost per SQL"]
    assert rows[1:] == [
        ["Social B", "Paid social", "", "500.00", "2", "1", "250.00", "500.00"],
        ["Search A", "Paid search", "", "1,200.00", "3", "2", "400.00", "600.00"],
        ["Webinar C", "Webinar", "", "300.00", "2", "0", "150.00", "—"],
        ["Total", "", "", "2,000.00", "7", "3", "285.71", "666.67"],
    ]
    cells = [cell for row in get_page(mgr, URL, **RANGE).rows("by_campaign") for cell in row]
    assert not [c for c in cells if "inf" in c.lower() or "∞" in c or "nan" == c.lower()]


def test_by_channel(story, mgr):
    assert get_page(mgr, URL, **RANGE).rows("by_channel")[1:] == [
        ["Paid search", "1,200.00", "3", "2", "400.00", "600.00"],
        ["Paid social", "500.00", "2", "1", "250.00", "500.00"],
        ["Webinar", "300.00", "2", "0", "150.00", "—"],
        ["Total", "2,000.00", "7", "3", "285.71", "666.67"],
    ]


def test_the_csv_leaves_an_undefined_cost_empty(story, mgr):
    rows = csv_dicts(get_csv(mgr, URL, table="by_campaign", **RANGE))
    assert rows["Webinar C"]["Cost per SQL"] == ""
    assert rows["Search A"]["Spend"] == "1200.00" and rows["Search A"]["Cost per SQL"] == "600.00"
