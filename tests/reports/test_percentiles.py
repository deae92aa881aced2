"""The percentile helper: percentile_cont on PostgreSQL, window functions elsewhere; both must give
what percentile_cont defines (position (n − 1) × p, linear interpolation), per group and overall."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import F

from handoff.models import Handoff
from handoff.reports.queries import SecondsBetween, percentiles
from tests.handoff.factories import HandoffFactory
from tests.leads.factories import UserFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 1, 6, 9, tzinfo=UTC)
WAIT = {"wait": SecondsBetween(F("first_action_at"), F("created_at"))}
METHODS = ["window", "percentile_cont"] if connection.vendor == "postgresql" else ["window"]


def reference(values, p):
    s = sorted(values)
    position = (len(s) - 1) * p
    low = int(position)
    high = min(low + 1, len(s) - 1)
    return s[low] + (position - low) * (s[high] - s[low])


def make(minutes, assignee=None):
    for m in minutes:
        HandoffFactory(created_at=T0, first_action_at=None if m is None else T0 + timedelta(minutes=m),
                       assignee=assignee)


@pytest.mark.parametrize("method", METHODS)
def test_median_and_p90_of_a_few_values(method):
    make([60, 120, 180, 240, 360, 720, 1200, 1560, 1800, None])  # hours 1 2 3 4 6 12 20 26 30; one waiting
    result = percentiles(Handoff.objects.all(), WAIT, method=method)[None]["wait"]
    assert result == {"n": 9, 0.5: 6 * 3600.0, 0.9: 26.8 * 3600}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 37])
def test_it_matches_the_definition_for_random_samples(method, n):
    rng = random.Random(n)
    minutes = [rng.randint(0, 5000) for _ in range(n)]
    make(minutes)
    result = percentiles(Handoff.objects.all(), WAIT, fractions=(0.25, 0.5, 0.9, 0.99), method=method)[None]["wait"]
    assert result["n"] == n
    for p in (0.25, 0.5, 0.9, 0.99):
        assert result[p] == pytest.approx(reference([m * 60.0 for m in minutes], p), abs=0.01)


@pytest.mark.parametrize("method", METHODS)
def test_per_group_in_one_query(method, django_assert_num_queries):
    a, b = UserFactory(), UserFactory()
    make([10, 20, 30, 40], assignee=a)
    make([5, 5, 100], assignee=b)
    make([None], assignee=None)  # a group without any value is left out
    with django_assert_num_queries(1):
        result = percentiles(Handoff.objects.all(), WAIT, group=F("assignee_id"), method=method)
    assert set(result) == {a.pk, b.pk}
    assert result[a.pk]["wait"] == {"n": 4, 0.5: 25 * 60.0, 0.9: 37 * 60.0}  # 30 + 0.7 × 10
    assert result[b.pk]["wait"] == {"n": 3, 0.5: 5 * 60.0, 0.9: 81 * 60.0}  # 5 + 0.8 × 95


@pytest.mark.parametrize("method", METHODS)
def test_several_measures_in_one_query(method, django_assert_num_queries):
    make([60, 120, 180])
    measures = {**WAIT, "double": SecondsBetween(F("first_action_at"), F("created_at")) * 2}
    with django_assert_num_queries(1):
        result = percentiles(Handoff.objects.all(), measures, method=method)[None]
    assert result["wait"][0.5] == 7200.0 and result["double"][0.5] == 14400.0


@pytest.mark.parametrize("method", METHODS)
def test_nothing_to_measure_gives_nothing(method):
    make([None])
    assert percentiles(Handoff.objects.all(), WAIT, method=method) == {}


@pytest.mark.parametrize("method", METHODS)
def test_summarize_gives_counts_and_percentiles_per_group(method):
    from django.db.models import Count

    from handoff.reports.queries import summarize

    a = UserFactory(first_name="Ann")
    make([10, 20, 30, None], assignee=a)
    make([5], assignee=None)
    result = summarize(Handoff.objects.all(), group=F("assignee_id"), counts={"all": Count("id")},
                       labels=(type(a), ("username", "first_name")), measures=WAIT, method=method)
    assert set(result) == {a.pk, None}
    row = result[a.pk]
    assert (row["all"], row["username"], row["first_name"]) == (4, a.username, "Ann")
    assert row["stats"]["wait"] == {"n": 3, 0.5: 20 * 60.0, 0.9: 28 * 60.0}
    # The labels are looked up by the group key: none for the group of unassigned handoffs.
    assert (result[None]["all"], result[None]["username"], result[None]["first_name"]) == (1, None, None)


@pytest.mark.parametrize("method", METHODS)
def test_summarize_of_nothing_is_empty(method):
    from django.db.models import Count

    from handoff.reports.queries import summarize

    assert summarize(Handoff.objects.all(), counts={"all": Count("id")}, measures=WAIT, method=method) == {}
    assert summarize(Handoff.objects.all(), group=F("assignee_id"), counts={"all": Count("id")}, measures=WAIT,
                     method=method) == {}


@pytest.mark.parametrize("method", METHODS)
def test_summarize_with_a_total_gives_the_percentiles_over_every_group(method):
    from django.db.models import Count
    from django.db.models.functions import TruncDay

    from handoff.reports.queries import TOTAL, summarize

    minutes = {0: [10, 20, 30, 40], 1: [5, 5, 100], 3: [7, None]}
    for day, values in minutes.items():
        for m in values:
            HandoffFactory(created_at=T0 + timedelta(days=day),
                           first_action_at=None if m is None else T0 + timedelta(days=day, minutes=m))
    result = summarize(Handoff.objects.all(), group=TruncDay("created_at"), counts={"all": Count("id")},
                       measures=WAIT, total=True, method=method)
    # All eight waits (minutes 5 5 7 10 20 30 40 100): median 15 min, p90 at position 6.3 → 58 min.
    assert result.pop(TOTAL) == {"stats": {"wait": {"n": 8, 0.5: 15 * 60.0, 0.9: 58 * 60.0}}}
    assert {key: row["all"] for key, row in result.items()} == {
        (T0 + timedelta(days=d)).date(): len(v) for d, v in minutes.items()}
    assert result[(T0 + timedelta(days=1)).date()]["stats"]["wait"] == {"n": 3, 0.5: 300.0, 0.9: 81 * 60.0}
    Handoff.objects.all().delete()
    assert summarize(Handoff.objects.all(), group=TruncDay("created_at"), counts={"all": Count("id")},
                     measures=WAIT, total=True, method=method) == {}
