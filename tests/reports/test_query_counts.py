"""Each report makes a small, fixed number of queries, however much data there is.

Common to every page: session, user, the user's permissions (2), campaigns and model versions for the
filter bar = 6. Then per report (see queries.py):
funnel 2 (leads; handoffs by cohort × source) · acceptance 2 (one grouped "cube"; weekly) ·
speed 1 (weekly counts with percentiles, and the overall percentiles from the same GROUP BY ROLLUP) ·
velocity 1 (counts and the four steps' percentiles) · cost 1 (handoffs by campaign; the campaigns
come from the filter bar) · calibration 2 (bands; the active model's threshold) · rules 2 (totals;
per rule) · sdrs 1 (counts and percentiles per SDR).
On SQLite, which has no percentile aggregate, counts and percentiles are separate queries: velocity
and sdrs make one more, speed two more (weekly and overall percentiles).
On PostgreSQL the funnel's leads and the rules' per-rule counts come from rollups (migration handoff
0009); a read that meets many uncompacted rollup rows compacts them first, one more statement, rarely
(tests/reports/test_rollups.py).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.reports import history
from tests.reports.history import RANGE

pytestmark = pytest.mark.django_db

COMMON = 6
SEPARATE = 0 if connection.vendor == "postgresql" else 1  # percentiles in their own query
QUERIES = {
    "": COMMON,
    "funnel/": COMMON + 2,
    "acceptance/": COMMON + 2,
    "speed/": COMMON + 1 + 2 * SEPARATE,
    "velocity/": COMMON + 1 + SEPARATE,
    "cost/": COMMON + 1,
    "calibration/": COMMON + 2,
    "rules/": COMMON + 2,
    "sdrs/": COMMON + 1 + SEPARATE,
}


def count(client, url, **params):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("path", list(QUERIES))
def test_a_report_makes_the_same_few_queries_for_12_and_36_mqls(story, mgr, path, django_assert_max_num_queries):
    url = f"/reports/{path}"
    few = count(mgr, url, **RANGE)
    history.build(campaign_names=("Search 2", "Social 2", "Webinar 2"))
    history.build(campaign_names=("Search 3", "Social 3", "Webinar 3"))
    with django_assert_max_num_queries(QUERIES[path]):
        many = count(mgr, url, **RANGE)
    assert few == many == QUERIES[path]


@pytest.mark.parametrize("path", [p for p in QUERIES if p])
def test_the_csv_makes_no_more_queries_than_the_page(story, mgr, path):
    assert count(mgr, f"/reports/{path}", format="csv", **RANGE) <= QUERIES[path]


@pytest.mark.parametrize("path", [p for p in QUERIES if p])
def test_an_empty_period_stops_after_the_first_query(story, mgr, path):
    assert count(mgr, f"/reports/{path}", **{"from": "2025-01-01", "to": "2025-01-31"}) <= QUERIES[path]
