"""Rule effectiveness against tests/reports/history.py, worked out by hand.

Totals: 11 MQLs, 9 decided, 6 accepted, 4 SQL (H1 H2 H3 H7).
Demo request: H2 H3 H5 H7 H8 H10 H11 → 7 MQLs, 5 decided, 5 accepted (100%), SQL H2 H3 H7 = 3/7 (42.9%);
  without: 4 MQLs, 4 decided, 1 accepted (25%), 1 SQL (25%) → lift 4.00, SQL lift (3/7)/(1/4) = 1.71.
Decision-maker title: H1 H2 H4 H5 H7 H8 H9 → 7, 7 decided, 5 accepted (71.4%), 3 SQL (42.9%);
  without: 4, 2, 1 (50%), 1 SQL (25%) → lift 10/7 = 1.43, SQL lift 1.71.
Pricing page: H1 H3 H4 H6 H7 H8 H9 H11 → 8, 7 decided, 4 accepted (57.1%), 3 SQL (37.5%);
  without: 3, 2, 2 (100%), 1 SQL (33.3%) → lift 0.57, SQL lift 9/8 = 1.125 → 1.13.
Free mail: H5 H6 → 2, 2, 1 (50%), 0 SQL (0%); without: 9, 7, 5 (71.4%), 4 SQL (44.4%) → lift 0.70, 0.00.
"""

import pytest

from handoff.reports import queries
from tests.reports.history import RANGE
from tests.reports.pages import get_page

pytestmark = pytest.mark.django_db
URL = "/reports/rules/"
HEADER = ["Rule", "Avg. points", "MQLs with", "Acceptance with", "MQLs without", "Acceptance without",
          "Acceptance lift", "SQL rate with", "SQL rate without", "SQL lift", "Note"]


def test_every_rule_with_and_without(story, mgr):
    small = "small sample (n < 20)"
    assert get_page(mgr, URL, **RANGE).rows("rules") == [
        HEADER,
        ["Demo request", "+40.0", "7", "100.0%", "4", "25.0%", "4.00×", "42.9%", "25.0%", "1.71×", small],
        ["Decision-maker title", "+20.0", "7", "71.4%", "4", "50.0%", "1.43×", "42.9%", "25.0%", "1.71×", small],
        ["Free mail", "−10.0", "2", "50.0%", "9", "71.4%", "0.70×", "0.0%", "44.4%", "0.00×", small],
        ["Pricing page", "+10.0", "8", "57.1%", "3", "100.0%", "0.57×", "37.5%", "33.3%", "1.13×", small],
    ]


def test_only_small_samples_are_flagged(story, mgr, monkeypatch):
    monkeypatch.setattr(queries, "SMALL_SAMPLE", 3)
    page = get_page(mgr, URL, **RANGE)
    notes = {row[0]: row[-1] for row in page.rows("rules")[1:]}
    # Free mail has 2 MQLs with it; every other rule has at least 3 on both sides.
    assert notes == {"Free mail": "small sample (n < 3)", "Demo request": "", "Decision-maker title": "",
                     "Pricing page": ""}
    assert 'class="small-sample"' in page.html


def test_within_one_model_version(story, mgr):
    # v1: H1 (DM, Pricing; accepted, SQL), H2 (Demo, DM; accepted, SQL), H3 (Demo, Pricing; accepted, SQL),
    # H4 (Pricing, DM; rejected). Demo request: with H2 H3 (2/2 accepted), without H1 H4 (1/2) → 2.00×.
    page = get_page(mgr, URL, version="Default v1", **RANGE)
    demo = page.row("rules", "Demo request")
    assert (demo["MQLs with"], demo["Acceptance with"], demo["MQLs without"], demo["Acceptance without"],
            demo["Acceptance lift"]) == ("2", "100.0%", "2", "50.0%", "2.00×")
    # Free mail only appears under v2.
    assert "Free mail" not in [r[0] for r in page.rows("rules")]


def test_two_rules_with_one_label_count_an_mql_once(mgr, sdr, sdr2, manager):
    from datetime import UTC, datetime

    from handoff import services
    from tests.leads.factories import LeadFactory

    when = datetime(2025, 3, 4, 10, tzinfo=UTC)
    twice = [
        {"rule_id": 7, "type": "fit", "label": "Senior", "points": 20},
        {"rule_id": 8, "type": "behavior", "label": "Senior", "points": 5},
    ]
    services.lead_promote_to_mql(lead=LeadFactory(), score=70, breakdown=twice, model_version="v", now=when)
    services.lead_promote_to_mql(lead=LeadFactory(), score=70, breakdown=[], model_version="v", now=when)
    row = get_page(mgr, URL, **RANGE).row("rules", "Senior")
    # One MQL with the label (its two contributions are merged when written: 20 + 5 = 25 points),
    # one without.
    assert (row["MQLs with"], row["MQLs without"], row["Avg. points"]) == ("1", "1", "+25.0")
