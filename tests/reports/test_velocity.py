"""Time in stage against tests/reports/history.py, worked out by hand.

MQL → SAL (h): H2 1, H1 2, H3 4, H7 6, H5 20, H8 26 (n 6): median (4 + 6) / 2 = 5 h; p90 position 4.5 →
  20 + 0.5 × 6 = 23 h.
SAL → SQL (d): H2 1, H7 1, H1 2, H3 3 (n 4): median 1.5 d = 36 h; p90 position 2.7 → 2 + 0.7 × 1 = 2.7 d.
SQL → opportunity (d): H7 2, H2 3, H1 5 (n 3): median 3 d; p90 position 1.8 → 3 + 0.8 × 2 = 4.6 d.
Opportunity → closed (d): H2 6 (lost), H1 10 (won) (n 2): median 8 d; p90 position 0.9 → 6 + 0.9 × 4 = 9.6 d.
SQL → opportunity ratio: 3 opportunities (H1 H2 H7) ÷ 4 SQLs (H1 H2 H3 H7) = 75.0%.
"""

import pytest

from tests.reports.history import RANGE
from tests.reports.pages import csv_dicts, get_csv, get_page

pytestmark = pytest.mark.django_db
URL = "/reports/velocity/"


def test_the_headline_figures(story, mgr):
    page = get_page(mgr, URL, **RANGE)
    assert page.figure("sql_opp_ratio") == "75.0%"
    assert page.figure("sqls") == "4"
    assert page.figure("opps") == "3"
    assert page.figure("won") == "1"
    assert page.figure("lost") == "1"


def test_time_in_each_stage(story, mgr):
    rows = get_page(mgr, URL, **RANGE).rows("stages")
    assert [r[:4] for r in rows] == [
        ["Step", "Made the step", "Median", "p90"],
        ["MQL → SAL", "6", "5.0 h", "23.0 h"],
        ["SAL → SQL", "4", "36.0 h", "2.7 d"],
        ["SQL → opportunity", "3", "3.0 d", "4.6 d"],
        ["Opportunity → closed", "2", "8.0 d", "9.6 d"],
    ]


def test_the_csv_gives_hours(story, mgr):
    rows = csv_dicts(get_csv(mgr, URL, **RANGE))
    assert (rows["SAL → SQL"]["Median (hours)"], rows["SAL → SQL"]["p90 (hours)"]) == ("36.00", "64.80")
    assert (rows["Opportunity → closed"]["Median (hours)"], rows["Opportunity → closed"]["p90 (hours)"]) == (
        "192.00", "230.40")
