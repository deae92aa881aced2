"""Per-SDR figures against tests/reports/history.py, worked out by hand.

Round robin: sdr has H2 H4 H6 H8 H10, sdr2 has H1 H3 H5 H7 H9 H11 (H12 is outside the range).
sdr: accepted H2 H8; rejected H4 H6; qualified H2; decided 4 → 2/4 = 50%.
  first action (h): H2 1, H6 3, H8 26, H4 30 → median (3 + 26) / 2 = 14.5; p90 position 2.7 → 26 + 0.7 × 4 = 28.8.
  SLA: met H2 H6; breached H4 H8 and H10 (overdue) → 2/5 = 40%.
sdr2: accepted H1 H3 H5 H7; rejected H5 (after acceptance) H9; qualified H1 H3 H7; decided 5 → 4/5 = 80%.
  first action (h): 2 4 6 12 20 → median 6; p90 position 3.6 → 12 + 0.6 × 8 = 16.8. SLA 5/5 (H11 waiting).
"""

import pytest

from tests.reports.history import RANGE
from tests.reports.pages import get_page

pytestmark = pytest.mark.django_db
URL = "/reports/sdrs/"


def test_one_row_per_sdr(story, mgr):
    assert get_page(mgr, URL, **RANGE).rows("sdrs") == [
        ["SDR", "Received", "Accepted", "Rejected", "Qualified", "Acceptance rate", "Median speed-to-lead",
         "p90 speed-to-lead", "SLA compliance", "Overdue now"],
        ["sdr", "5", "2", "2", "1", "50.0%", "14.5 h", "28.8 h", "40.0%", "1"],
        ["sdr2", "6", "4", "2", "3", "80.0%", "6.0 h", "16.8 h", "100.0%", "0"],
        ["All", "11", "6", "4", "4", "66.7%", "—", "—", "70.0%", "1"],
    ]


def test_full_names_show_with_the_username(story, mgr, sdr):
    sdr.first_name, sdr.last_name = "Sam", "Ortiz"
    sdr.save()
    assert get_page(mgr, URL, **RANGE).row("sdrs", "Sam Ortiz (sdr)")["Received"] == "5"
