"""Score calibration against tests/reports/history.py, worked out by hand.

Scores at MQL: H9 60, H6 62, H1 65, H4 68 | H10 70, H2 72, H5 75, H11 77 | H3 81 | H7 93 | H8 104.
"""

import pytest

from tests.reports.history import RANGE
from tests.reports.pages import get_page

pytestmark = pytest.mark.django_db
URL = "/reports/calibration/"
HEADER = ["Score at MQL", "MQLs", "Decided", "Accepted", "Acceptance rate", "SQLs", "SQL rate"]


def test_bands_of_ten(story, mgr):
    assert get_page(mgr, URL, **RANGE).rows("bands") == [
        HEADER,
        # H1 accepted (SQL); H4 H6 H9 rejected → 1/4 accepted, 1/4 SQL.
        ["60–69", "4", "4", "1", "25.0%", "1", "25.0%"],
        # H2 accepted (SQL), H5 accepted; H10 H11 undecided → 2/2 accepted; SQL 1/4.
        ["70–79", "4", "2", "2", "100.0%", "1", "25.0%"],
        ["80–89", "1", "1", "1", "100.0%", "1", "100.0%"],  # H3
        ["90–99", "1", "1", "1", "100.0%", "1", "100.0%"],  # H7
        ["100+", "1", "1", "1", "100.0%", "0", "0.0%"],  # H8, accepted, not qualified
    ]


def test_band_width_is_a_get_parameter(story, mgr):
    page = get_page(mgr, URL, band="20", **RANGE)
    assert page.rows("bands")[1:] == [
        ["60–79", "8", "6", "3", "50.0%", "2", "25.0%"],  # 3 of 6 decided accepted (H1 H2 H5); SQL H1 H2
        ["80–99", "2", "2", "2", "100.0%", "2", "100.0%"],  # H3 H7
        ["100+", "1", "1", "1", "100.0%", "0", "0.0%"],
    ]
    page = get_page(mgr, URL, band="25", **RANGE)
    assert page.rows("bands")[1:] == [
        # H9 H6 H1 H4 H10 H2: decided all but H10; accepted H1 H2 → 2/5; SQL H1 H2 → 2/6.
        ["50–74", "6", "5", "2", "40.0%", "2", "33.3%"],
        # H5 H11 H3 H7: decided H5 H3 H7, all accepted; SQL H3 H7 → 2/4.
        ["75–99", "4", "3", "3", "100.0%", "2", "50.0%"],
        ["100+", "1", "1", "1", "100.0%", "0", "0.0%"],
    ]


def test_a_bad_band_width_falls_back_to_ten(story, mgr):
    page = get_page(mgr, URL, band="7", **RANGE)
    assert page.rows("bands")[1][0] == "60–69"
    assert "Using the default" in page.html


def test_the_chart_has_bands_counts_and_rates(story, mgr):
    chart = get_page(mgr, URL, **RANGE).chart("chart-calibration")
    assert chart["labels"] == ["60–69", "70–79", "80–89", "90–99", "100+"]
    data = {d["label"]: d["data"] for d in chart["datasets"]}
    assert data == {
        "MQLs": [4, 4, 1, 1, 1],
        "Acceptance rate": [25.0, 100.0, 100.0, 100.0, 100.0],
        "SQL rate": [25.0, 25.0, 100.0, 100.0, 0.0],
    }


def test_the_filter_bar_shows_the_band_width_in_use(story, mgr):
    assert '<option value="10" selected>' in get_page(mgr, URL, **RANGE).html
    assert '<option value="20" selected>' in get_page(mgr, URL, band="20", **RANGE).html
