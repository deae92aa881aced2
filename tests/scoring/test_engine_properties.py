"""Properties of the scoring engine that must hold for any model and history."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.engine import (
    BehaviorRuleSpec,
    FitRuleSpec,
    InteractionFact,
    ModelSpec,
    behavior_points,
    round_half_up,
    score_lead,
    score_leads,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
KINDS = ("pricing_page_view", "content_download", "demo_request", "unsubscribe")
any_kind = st.sampled_from(KINDS)

points = st.one_of(
    st.integers(-50, 50),
    st.floats(-50, 50, allow_nan=False, allow_infinity=False),
    st.decimals(-50, 50, places=2, allow_nan=False, allow_infinity=False),
)
positive = st.floats(0.5, 100, allow_nan=False, allow_infinity=False)

property_conditions = st.sampled_from(
    [
        None,
        {"key": "asset_type", "operator": "equals", "value": "whitepaper"},
        {"key": "asset_type", "operator": "not_in", "value": ["ebook", "webinar"]},
        {"key": "seconds", "operator": "gte", "value": 30},
        {"key": "seconds", "operator": "between", "value": [10, 100]},
        {"key": "utm", "operator": "is_not_set"},
    ]
)

fit_rules = st.sampled_from(
    [
        ("job_title", "contains_any", ["vp", "head"]),
        ("company_size", "gte", 200),
        ("email_domain", "in", ["gmail.com"]),
        ("country", "not_equals", "de"),
        ("annual_revenue", "between", [1000, 50000]),
        ("industry", "is_not_set", None),
    ]
)


@st.composite
def behavior_rules(draw, kinds=any_kind, points=points):
    return BehaviorRuleSpec(
        id=draw(st.integers(1, 10_000)),
        label=draw(st.text("abcxyz ", min_size=1, max_size=8)),
        kind=draw(kinds),
        points=draw(points),
        property=draw(property_conditions),
        max_points=draw(st.none() | positive),
        half_life_days=draw(st.none() | positive),
        within_days=draw(st.none() | st.integers(0, 120)),
    )


@st.composite
def models(draw):
    fits = tuple(
        FitRuleSpec(id=i, label=f"fit {i}", field=f, operator=op, value=v, points=draw(points))
        for i, (f, op, v) in enumerate(draw(st.lists(fit_rules, max_size=4)))
    )
    return ModelSpec(
        fit_rules=fits,
        behavior_rules=tuple(draw(st.lists(behavior_rules(), max_size=6))),
        mql_threshold=60,
    )


lead_facts = st.fixed_dictionaries(
    {
        "email": st.sampled_from(["ann@gmail.com", "bo@acme.io", None]),
        "job_title": st.sampled_from(["VP Sales", "Intern", "", None]),
        "company_size": st.none() | st.integers(0, 5000),
        "country": st.sampled_from(["DE", "fr", None]),
        "annual_revenue": st.none() | st.decimals(0, 100000, places=2),
        "industry": st.sampled_from(["SaaS", None]),
    }
)

properties = st.fixed_dictionaries(
    {},
    optional={
        "asset_type": st.sampled_from(["Whitepaper", "ebook", "webinar", ""]),
        "seconds": st.sampled_from([5, 30, 45.5, "60", "lots", 200]),
        "utm": st.sampled_from(["ads", None]),
    },
)


@st.composite
def interactions(draw, kinds=any_kind):
    # From 5 days in the future (ignored) to 200 days ago, to the second.
    offset = draw(st.integers(-5 * 86400, 200 * 86400))
    return InteractionFact(
        kind=draw(kinds),
        occurred_at=NOW - timedelta(seconds=offset),
        properties=draw(properties),
    )


def with_keys(facts):
    """Give each fact a distinct external id, as stored interactions have."""
    return [InteractionFact(f.kind, f.occurred_at, f.properties, key=f"evt-{i}") for i, f in enumerate(facts)]


def ingest(deliveries):
    """What storage does: a repeated delivery (same external id) is stored once."""
    stored = {}
    for fact in deliveries:
        stored.setdefault(fact.key, fact)
    return list(stored.values())


@settings(deadline=None)
@given(models(), lead_facts, st.lists(interactions(), max_size=15), st.randoms())
def test_the_order_of_interactions_does_not_matter(model, facts, history, rnd):
    shuffled = list(history)
    rnd.shuffle(shuffled)
    assert score_lead(model, facts, shuffled, NOW) == score_lead(model, facts, history, NOW)


@settings(deadline=None)
@given(models(), lead_facts, st.lists(interactions(), min_size=1, max_size=10), st.data())
def test_a_duplicate_delivery_changes_nothing(model, facts, history, data):
    originals = with_keys(history)
    deliveries = list(originals)
    # Redeliver some events, each after its first delivery.
    for fact in data.draw(st.lists(st.sampled_from(originals), max_size=10)):
        position = data.draw(st.integers(deliveries.index(fact) + 1, len(deliveries)))
        deliveries.insert(position, fact)

    expected = score_lead(model, facts, originals, NOW)
    assert score_lead(model, facts, ingest(deliveries), NOW) == expected
    assert score_lead(model, facts, deliveries, NOW) == expected  # the engine dedupes too


@settings(deadline=None)
@given(
    st.data(),
    lead_facts,
    st.lists(interactions(), max_size=10),
    interactions(kinds=st.just("good_thing")),
)
def test_a_positive_interaction_never_lowers_the_score(data, facts, history, extra):
    # "good_thing" only has rules with positive points; other kinds are arbitrary.
    good_rules = st.lists(behavior_rules(kinds=st.just("good_thing"), points=st.floats(0.01, 50)), max_size=3)
    base = data.draw(models())
    model = ModelSpec(base.fit_rules, base.behavior_rules + tuple(data.draw(good_rules)), 60)

    before = score_lead(model, facts, history, NOW)
    after = score_lead(model, facts, history + [extra], NOW)
    assert after.score >= before.score
    assert after.engagement_score >= before.engagement_score
    assert after.fit_score == before.fit_score


@settings(deadline=None)
@given(models(), st.lists(st.tuples(lead_facts, st.lists(interactions(), max_size=6)), max_size=5))
def test_score_leads_equals_score_lead_for_each_lead(model, leads):
    rows = [(i, facts, history) for i, (facts, history) in enumerate(leads)]
    assert score_leads(model, rows, NOW) == {
        i: score_lead(model, facts, history, NOW) for i, facts, history in rows
    }


@given(models(), st.lists(interactions(), max_size=15))
def test_no_rule_contributes_more_than_its_cap(model, history):
    for rule, contribution in behavior_points(model, history, NOW):
        if rule.max_points is not None:
            assert abs(contribution) <= float(rule.max_points)


@given(st.decimals(-(10**9), 10**9, places=6, allow_nan=False, allow_infinity=False))
def test_rounding_matches_decimal_half_up_for_six_decimal_inputs(x):
    assert round_half_up(float(x)) == int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False))
def test_rounding_is_symmetric_around_zero(x):
    assert round_half_up(-x) == -round_half_up(x)
