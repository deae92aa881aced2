"""Funnel figures against tests/reports/history.py, worked out by hand.

Range 24 Feb – 20 Mar 2025. Leads created: week of 24 Feb: H1's lead, L16 (2); week of 3 Mar: leads of
H2–H6, L13, L15 (7); week of 10 Mar: H7–H9, L14 (4); week of 17 Mar: H10, H11, L17 (3) → 16.
MQLs: 1 + 5 + 3 + 2 = 11. SAL (accepted): H1 | H2 H3 H5 | H7 H8 | – = 6. SQL: H1 | H2 H3 | H7 = 4.
Opportunity (transition): H1 | H2 | H7 = 3. Won: H1 = 1.
"""

import pytest

from tests.reports.history import RANGE
from tests.reports.pages import csv_dicts, get_csv, get_page

pytestmark = pytest.mark.django_db
URL = "/reports/funnel/"
HEADER = ["Week", "Leads", "MQLs", "SAL", "SQL", "Opportunity", "Won",
          "Lead → MQL", "MQL → SAL", "SAL → SQL", "SQL → Opp.", "Opp. → Won"]


def test_the_headline_figures(story, mgr):
    page = get_page(mgr, URL, **RANGE)
    assert page.figure("mqls") == "11"
    assert page.figure("mql_sal") == "54.5%"  # 6 / 11
    assert page.figure("sal_sql") == "66.7%"  # 4 / 6
    assert page.figure("sql_opp") == "75.0%"  # 3 / 4
    assert page.figure("opp_won") == "33.3%"  # 1 / 3


def test_weekly_cohorts(story, mgr):
    rows = get_page(mgr, URL, **RANGE).rows("cohorts")
    assert rows == [
        HEADER,
        # 1/2 leads→MQL; the one MQL went all the way.
        ["Week of 24 Feb 2025", "2", "1", "1", "1", "1", "1", "50.0%", "100.0%", "100.0%", "100.0%", "100.0%"],
        # 5/7 = 71.4%, 3/5 = 60.0%, 2/3 = 66.7%, 1/2 = 50.0%, 0/1 = 0.0%.
        ["Week of 3 Mar 2025", "7", "5", "3", "2", "1", "0", "71.4%", "60.0%", "66.7%", "50.0%", "0.0%"],
        # 3/4 = 75.0%, 2/3 = 66.7%, 1/2 = 50.0%, 1/1, 0/1.
        ["Week of 10 Mar 2025", "4", "3", "2", "1", "1", "0", "75.0%", "66.7%", "50.0%", "100.0%", "0.0%"],
        # 2/3 = 66.7%, 0/2; nothing to divide after that: "—", not 0%.
        ["Week of 17 Mar 2025", "3", "2", "0", "0", "0", "0", "66.7%", "0.0%", "—", "—", "—"],
        # 11/16 = 68.75 → 68.8%, 6/11 = 54.5%, 4/6 = 66.7%, 3/4 = 75.0%, 1/3 = 33.3%.
        ["Total", "16", "11", "6", "4", "3", "1", "68.8%", "54.5%", "66.7%", "75.0%", "33.3%"],
    ]


def test_monthly_cohorts(story, mgr):
    page = get_page(mgr, URL, cohort="month", **RANGE)
    header, *rows = page.rows("cohorts")
    assert header[0] == "Month"
    assert [r[:7] for r in rows] == [
        ["Feb 2025", "2", "1", "1", "1", "1", "1"],  # H1 (and L16)
        ["Mar 2025", "14", "10", "5", "3", "2", "0"],  # everything else
        ["Total", "16", "11", "6", "4", "3", "1"],
    ]


def test_by_source(story, mgr):
    page = get_page(mgr, URL, **RANGE)
    # Inbound: leads of H1 H4 H9 H10 + L13 L16 L17 = 7; MQLs H1 H4 H9 H10; only H1 went on (and won).
    assert list(page.row("sources", "Inbound").values())[1:] == [
        "7", "4", "1", "1", "1", "1", "57.1%", "25.0%", "100.0%", "100.0%", "100.0%"]
    # Paid: leads of H2 H3 H7 H8 H11 + L14 = 6; SAL H2 H3 H7 H8; SQL H2 H3 H7; opp H2 H7 (lost, open).
    assert list(page.row("sources", "Paid").values())[1:] == [
        "6", "5", "4", "3", "2", "0", "83.3%", "80.0%", "75.0%", "66.7%", "0.0%"]
    # Event: leads of H5 H6 + L15; H5 accepted then rejected.
    assert list(page.row("sources", "Event").values())[1:] == [
        "3", "2", "1", "0", "0", "0", "66.7%", "50.0%", "0.0%", "—", "—"]
    assert [r[0] for r in page.rows("sources")[1:]] == ["Inbound", "Paid", "Event", "Total"]


def test_the_csv_holds_the_same_numbers_as_plain_values(story, mgr):
    rows = csv_dicts(get_csv(mgr, URL, table="cohorts", **RANGE))
    assert rows["Total"] == {
        "Week": "Total", "Leads": "16", "MQLs": "11", "SAL": "6", "SQL": "4", "Opportunity": "3", "Won": "1",
        "Lead → MQL (%)": "68.8", "MQL → SAL (%)": "54.5", "SAL → SQL (%)": "66.7", "SQL → Opp. (%)": "75.0",
        "Opp. → Won (%)": "33.3",
    }
    assert rows["Week of 17 Mar 2025"]["SAL → SQL (%)"] == ""  # undefined: empty, not 0


def test_charts_carry_the_funnel_and_the_cohorts(story, mgr):
    page = get_page(mgr, URL, **RANGE)
    funnel = page.chart("chart-funnel")
    assert funnel["labels"] == ["Leads", "MQL", "SAL", "SQL", "Opportunity", "Won"]
    assert funnel["datasets"][0]["data"] == [16, 11, 6, 4, 3, 1]
    cohorts = page.chart("chart-cohorts")
    assert cohorts["labels"] == ["24 Feb 2025", "3 Mar 2025", "10 Mar 2025", "17 Mar 2025"]
    assert {d["label"]: d["data"] for d in cohorts["datasets"]} == {
        "MQLs": [1, 5, 3, 2], "SAL": [1, 3, 2, 0], "SQL": [1, 2, 1, 0]}
