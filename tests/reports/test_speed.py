"""Speed-to-lead and SLA figures against tests/reports/history.py, worked out by hand (now = 20 Mar 12:00).

First action after MQL (hours): H1 2, H2 1, H3 4, H4 30, H5 20, H6 3, H7 6, H8 26, H9 12.
Sorted: 1 2 3 4 6 12 20 26 30 (n = 9). Median: the 5th = 6 h. p90: position (9 − 1) × 0.9 = 7.2 →
26 + 0.2 × (30 − 26) = 26.8 h.
SLA 24 h: met H1 H2 H3 H5 H6 H7 H9 (7); breached H4 (30 h), H8 (26 h), H10 (no action, due 19 Mar 09:00,
passed) = 3 → 7 / 10 = 70.0%. H11 (due 21 Mar 08:00) is waiting within its SLA: not counted.
Overdue now: H10.
"""

import pytest

from tests.reports.history import RANGE
from tests.reports.pages import csv_dicts, get_csv, get_page

pytestmark = pytest.mark.django_db
URL = "/reports/speed/"


def test_the_headline_figures(story, mgr):
    page = get_page(mgr, URL, **RANGE)
    assert page.figure("median") == "6.0 h"
    assert page.figure("p90") == "26.8 h"
    assert page.figure("sla") == "70.0%"
    assert page.figure("overdue") == "1"
    assert page.figure("pending") == "1"


def test_weekly_rows(story, mgr):
    assert get_page(mgr, URL, **RANGE).rows("weekly") == [
        ["Week", "MQLs", "Acted on", "Median speed-to-lead", "p90 speed-to-lead", "SLA met", "SLA breached",
         "Waiting, within SLA", "Overdue now", "SLA compliance"],
        ["Week of 24 Feb 2025", "1", "1", "2.0 h", "2.0 h", "1", "0", "0", "0", "100.0%"],
        # 1 3 4 20 30: median 4; p90 position 3.6 → 20 + 0.6 × 10 = 26. H4 breached.
        ["Week of 3 Mar 2025", "5", "5", "4.0 h", "26.0 h", "4", "1", "0", "0", "80.0%"],
        # 6 12 26: median 12; p90 position 1.8 → 12 + 0.8 × 14 = 23.2. H8 breached.
        ["Week of 10 Mar 2025", "3", "3", "12.0 h", "23.2 h", "2", "1", "0", "0", "66.7%"],
        # H10 overdue (breached), H11 waiting: 0 / 1.
        ["Week of 17 Mar 2025", "2", "0", "—", "—", "0", "1", "1", "1", "0.0%"],
        ["Total", "11", "9", "6.0 h", "26.8 h", "7", "3", "1", "1", "70.0%"],
    ]


def test_the_csv_gives_hours(story, mgr):
    rows = csv_dicts(get_csv(mgr, URL, table="weekly", **RANGE))
    assert rows["Total"]["Median speed-to-lead (hours)"] == "6.00"
    assert rows["Total"]["p90 speed-to-lead (hours)"] == "26.80"
    assert rows["Week of 17 Mar 2025"]["Median speed-to-lead (hours)"] == ""


def test_the_summary_csv(story, mgr):
    rows = csv_dicts(get_csv(mgr, URL, table="summary", **RANGE))
    assert rows["Speed-to-lead, median"] == {"Figure": "Speed-to-lead, median", "Value": "6.00", "Unit": "hours"}
    assert rows["SLA compliance"]["Value"] == "70.0"
