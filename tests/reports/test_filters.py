"""The filter bar: date range by MQL date (default: the last 90 days), source, campaign, model version;
GET parameters kept in links; empty periods say so."""

import pytest

from handoff.reports.views import REPORTS
from tests.reports.history import RANGE
from tests.reports.pages import get_page

pytestmark = pytest.mark.django_db
EMPTY = {"from": "2025-01-01", "to": "2025-01-31"}


def test_the_default_range_is_the_last_90_days(story, mgr):
    # now = 20 Mar 2025: 21 Dec 2024 – 20 Mar 2025, which holds H1–H11 but not H12 (1 Nov 2024).
    page = get_page(mgr, "/reports/funnel/")
    assert 'data-period="2024-12-21/2025-03-20"' in page.html
    assert 'value="2024-12-21"' in page.html and 'value="2025-03-20"' in page.html
    assert page.figure("mqls") == "11"


def test_a_wider_range_takes_in_older_mqls(story, mgr):
    assert get_page(mgr, "/reports/funnel/", **{"from": "2024-10-01", "to": "2025-03-20"}).figure("mqls") == "12"


def test_the_date_range_narrows_by_mql_date(story, mgr):
    # Week of 10 March only: H7, H8, H9. Speed-to-lead 6, 12, 26 h → median 12 h.
    params = {"from": "2025-03-10", "to": "2025-03-16"}
    assert get_page(mgr, "/reports/funnel/", **params).figure("mqls") == "3"
    assert get_page(mgr, "/reports/speed/", **params).figure("median") == "12.0 h"


def test_the_range_includes_both_end_days(story, mgr):
    # H11 became an MQL on 20 March at 08:00, H10 on 18 March.
    assert get_page(mgr, "/reports/funnel/", **{"from": "2025-03-18", "to": "2025-03-20"}).figure("mqls") == "2"
    assert get_page(mgr, "/reports/funnel/", **{"from": "2025-03-20", "to": "2025-03-20"}).figure("mqls") == "1"


def test_source_narrows(story, mgr):
    # Paid: H2 H3 H7 H8 accepted, H11 waiting.
    page = get_page(mgr, "/reports/acceptance/", source="paid", **RANGE)
    assert page.figure("mqls") == "5" and page.figure("acceptance_rate") == "100.0%"
    assert [r[0] for r in page.rows("by_source")[1:]] == ["Paid", "Total"]


def test_campaign_narrows(story, mgr):
    webinar = story["campaigns"]["webinar"]
    page = get_page(mgr, "/reports/acceptance/", campaign=webinar.pk, **RANGE)
    assert page.figure("acceptance_rate") == "50.0%"  # H5 accepted, H6 rejected
    cost = get_page(mgr, "/reports/cost/", campaign=webinar.pk, **RANGE)
    assert [r[0] for r in cost.rows("by_campaign")[1:]] == ["Webinar C", "Total"]


def test_model_version_narrows(story, mgr):
    page = get_page(mgr, "/reports/funnel/", version="Default v1", **RANGE)
    assert page.figure("mqls") == "4"  # H1–H4
    assert '<option value="Default v1" selected>' in page.html


def test_filters_combine(story, mgr):
    # Paid and v2: H7 H8 H11; first actions 6 h and 26 h → median 16 h.
    page = get_page(mgr, "/reports/speed/", source="paid", version="Default v2", **RANGE)
    assert page.figure("median") == "16.0 h"


@pytest.mark.parametrize("slug", [r.slug for r in REPORTS])
def test_an_empty_period_says_so_instead_of_showing_zeros(story, mgr, slug):
    page = get_page(mgr, f"/reports/{slug}/", **EMPTY)
    assert "No MQLs in this period" in page.html
    assert not page.figures and not page._tables
    assert "<canvas" not in page.html


def test_filters_are_kept_in_the_links_between_reports(story, mgr):
    html = get_page(mgr, "/reports/funnel/", source="paid", cohort="month", **RANGE).html
    for report in REPORTS:
        assert f'href="/reports/{report.slug}/?from=2025-02-24&amp;to=2025-03-20&amp;source=paid"' in html


def test_page_specific_fields_show_only_on_their_page(story, mgr):
    assert 'name="cohort"' in get_page(mgr, "/reports/funnel/", **RANGE).html
    assert 'name="cohort"' not in get_page(mgr, "/reports/speed/", **RANGE).html
    assert 'name="band"' in get_page(mgr, "/reports/calibration/", **RANGE).html


def test_a_bad_date_falls_back_to_the_default_and_says_so(story, mgr):
    page = get_page(mgr, "/reports/funnel/", **{"from": "not-a-date"})
    assert 'data-period="2024-12-21/2025-03-20"' in page.html
    assert "Enter a valid date" in page.html


def test_a_reversed_range_falls_back_to_the_default_and_says_so(story, mgr):
    page = get_page(mgr, "/reports/funnel/", **{"from": "2025-03-20", "to": "2025-03-01"})
    assert 'data-period="2024-12-21/2025-03-20"' in page.html
    assert "must be on or before" in page.html


def test_an_unknown_campaign_or_source_is_ignored(story, mgr):
    page = get_page(mgr, "/reports/funnel/", campaign="999999", source="nope", **RANGE)
    assert page.figure("mqls") == "11"


def test_the_model_version_choices_are_the_versions_recorded_on_handoffs(db):
    """On PostgreSQL they come from a walk down the (model_version, created_at) index, one probe per
    version; it must list what SELECT DISTINCT lists, in the same order."""
    from handoff.models import Handoff
    from handoff.reports.views import model_versions
    from tests.handoff.factories import HandoffFactory

    for version in ["v2", "", "v10", "v2", "Default v1", "v10", "", "ü-model", "a b"]:
        HandoffFactory(model_version=version)
    expected = list(
        Handoff.objects.exclude(model_version="").order_by("model_version")
        .values_list("model_version", flat=True).distinct()
    )
    assert len(expected) == 5
    assert model_versions() == expected
    Handoff.objects.update(model_version="")
    assert model_versions() == []
