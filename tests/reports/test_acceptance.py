"""Acceptance figures against tests/reports/history.py, worked out by hand.

Decided (first action): H1 H2 H3 H5 H7 H8 accepted, H4 H6 H9 rejected as MQL → 6 / 9 = 66.7%.
Undecided: H10, H11. Rejections: H4 no budget, H6 no budget, H9 competitor (as MQL); H5 bad timing (after
acceptance) → 4 in all.
"""

import pytest

from tests.reports.history import RANGE
from tests.reports.pages import csv_dicts, get_csv, get_page

pytestmark = pytest.mark.django_db
URL = "/reports/acceptance/"


def test_the_headline_figures(story, mgr):
    page = get_page(mgr, URL, **RANGE)
    assert page.figure("acceptance_rate") == "66.7%"
    assert page.figure("mqls") == "11"
    assert page.figure("decided") == "9"
    assert page.figure("rejected") == "3"
    assert page.figure("undecided") == "2"
    assert "6 accepted of 9 decided" in page.html
    assert "undecided" in page.html.lower() and "excluded" in page.html


def test_rejection_reasons_with_counts_and_shares(story, mgr):
    assert get_page(mgr, URL, **RANGE).rows("reasons") == [
        ["Reason", "Rejected as MQL", "Rejected after acceptance", "Total", "Share"],
        ["No budget", "2", "0", "2", "50.0%"],  # H4, H6
        ["Bad timing", "0", "1", "1", "25.0%"],  # H5, after acceptance
        ["Competitor", "1", "0", "1", "25.0%"],  # H9
        ["Total", "3", "1", "4", "100.0%"],
    ]


def test_by_source(story, mgr):
    header = ["Source", "MQLs", "Undecided", "Decided", "Accepted", "Rejected", "Acceptance rate",
              "Top rejection reason"]
    assert get_page(mgr, URL, **RANGE).rows("by_source") == [
        header,
        # H1 accepted; H4, H9 rejected (one each: ties go alphabetically); H10 waiting.
        ["Inbound", "4", "1", "3", "1", "2", "33.3%", "Competitor (1)"],
        # H2 H3 H7 H8 accepted, H11 waiting.
        ["Paid", "5", "1", "4", "4", "0", "100.0%", ""],
        # H5 accepted (rejected later: bad timing), H6 rejected (no budget).
        ["Event", "2", "0", "2", "1", "1", "50.0%", "Bad timing (1)"],
        ["Total", "11", "2", "9", "6", "3", "66.7%", ""],
    ]


def test_by_campaign(story, mgr):
    rows = get_page(mgr, URL, **RANGE).rows("by_campaign")
    assert rows[1:] == [
        ["Search A", "3", "1", "2", "2", "0", "100.0%", ""],  # H2 H3 accepted, H11 waiting
        ["Social B", "2", "0", "2", "2", "0", "100.0%", ""],  # H7 H8
        ["Webinar C", "2", "0", "2", "1", "1", "50.0%", "Bad timing (1)"],  # H5, H6
        ["(no campaign)", "4", "1", "3", "1", "2", "33.3%", "Competitor (1)"],  # H1 H4 H9 H10
        ["Total", "11", "2", "9", "6", "3", "66.7%", ""],
    ]


def test_by_model_version(story, mgr):
    rows = get_page(mgr, URL, **RANGE).rows("by_version")
    assert rows[1:] == [
        ["Default v1", "4", "0", "4", "3", "1", "75.0%", "No budget (1)"],  # H1 H2 H3 accepted, H4 rejected
        # H5 H7 H8 accepted; H6, H9 rejected; H10 H11 waiting → 3 / 5.
        ["Default v2", "7", "2", "5", "3", "2", "60.0%", "Bad timing (1)"],
        ["Total", "11", "2", "9", "6", "3", "66.7%", ""],
    ]


def test_weekly_trend(story, mgr):
    page = get_page(mgr, URL, **RANGE)
    assert page.rows("weekly")[1:] == [
        ["Week of 24 Feb 2025", "1", "1", "1", "100.0%"],
        ["Week of 3 Mar 2025", "5", "5", "3", "60.0%"],  # H2 H3 H5 accepted; H4 H6 rejected
        ["Week of 10 Mar 2025", "3", "3", "2", "66.7%"],  # H7 H8; H9 rejected
        ["Week of 17 Mar 2025", "2", "0", "0", "—"],  # nothing decided yet: no rate, not 0%
    ]
    # The chart's line has a gap (null) for the undecided week.
    chart = {d["label"]: d["data"] for d in page.chart("chart-acceptance-trend")["datasets"]}
    assert chart == {"Acceptance rate": [100.0, 60.0, 66.7, None], "MQLs": [1, 5, 3, 2]}


def test_the_reasons_csv(story, mgr):
    rows = get_csv(mgr, URL, table="reasons", **RANGE)
    assert rows[0] == ["Reason", "Rejected as MQL", "Rejected after acceptance", "Total", "Share (%)"]
    assert csv_dicts(rows)["No budget"]["Share (%)"] == "50.0"
