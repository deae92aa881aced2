"""Worked examples for the scoring engine, each computed by hand in comments."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from scoring.engine import (
    BehaviorRuleSpec,
    FitRuleSpec,
    InteractionFact,
    ModelSpec,
    ScoreResult,
    behavior_points,
    fit_points,
    lead_facts,
    round_half_up,
    score_lead,
    score_leads,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def fit_model(*rules: FitRuleSpec, threshold: float = 60, min_fit: float | None = None) -> ModelSpec:
    return ModelSpec(fit_rules=rules, behavior_rules=(), mql_threshold=threshold, mql_min_fit=min_fit)


def behavior_model(*rules: BehaviorRuleSpec) -> ModelSpec:
    return ModelSpec(fit_rules=(), behavior_rules=rules, mql_threshold=60)


def fit(field, operator, value, points=10, id=1, label="rule") -> FitRuleSpec:
    return FitRuleSpec(id=id, label=label, field=field, operator=operator, value=value, points=points)


def behavior(kind="pricing_page_view", points=10, id=1, label="rule", **kw) -> BehaviorRuleSpec:
    return BehaviorRuleSpec(id=id, label=label, kind=kind, points=points, **kw)


def hit(kind="pricing_page_view", age_days: float = 0, **properties) -> InteractionFact:
    return InteractionFact(kind=kind, occurred_at=days_ago(age_days), properties=properties)


def engagement(rule: BehaviorRuleSpec, *facts: InteractionFact) -> float:
    [(_, points)] = behavior_points(behavior_model(rule), facts, NOW)
    return points


def fit_total(rule: FitRuleSpec, **facts) -> float:
    [(_, points)] = fit_points(fit_model(rule), facts)
    return points


# --------------------------------------------------------------------------
# The design's example model, scored by hand
# --------------------------------------------------------------------------

DEFAULT_B2B = ModelSpec(
    fit_rules=(
        FitRuleSpec(
            1, "Decision-maker title", "job_title", "contains_any", ["vp", "head", "director", "chief"], 20
        ),
        FitRuleSpec(2, "Mid-market+", "company_size", "gte", 200, 15),
        FitRuleSpec(3, "Free mail", "email_domain", "in", ["gmail.com"], -10),
    ),
    behavior_rules=(
        BehaviorRuleSpec(4, "Pricing page", "pricing_page_view", 10, max_points=30, half_life_days=14),
        BehaviorRuleSpec(
            5,
            "Whitepaper",
            "content_download",
            8,
            property={"key": "asset_type", "operator": "equals", "value": "whitepaper"},
        ),
        BehaviorRuleSpec(6, "Demo request", "demo_request", 40, within_days=90),
        BehaviorRuleSpec(7, "Unsubscribed", "unsubscribe", -25),
    ),
    mql_threshold=60,
    mql_min_fit=None,
)


def test_the_default_b2b_model_scores_an_engaged_vp_at_a_mid_market_company():
    lead = SimpleNamespace(
        email="Jane.Doe@Acme.io",
        first_name="Jane",
        last_name="Doe",
        job_title="VP of Marketing",
        seniority="vp",
        company="Acme",
        industry="SaaS",
        country="DE",
        source="inbound",
        company_size=350,
        annual_revenue=Decimal("12000000.00"),
    )
    interactions = [
        hit("pricing_page_view", 0),  # 10 × 0.5^(0/14)  = 10
        hit("pricing_page_view", 14),  # 10 × 0.5^(14/14) = 5
        hit("pricing_page_view", 14),  # 5 again (no key: a separate visit)
        hit("pricing_page_view", 28),  # 10 × 0.5^(28/14) = 2.5   -> s = 22.5 < cap 30
        hit("content_download", 40, asset_type="Whitepaper"),  # +8, case-insensitive
        hit("content_download", 2, asset_type="webinar"),  # condition fails: 0
        hit("demo_request", 30),  # +40, inside 90 days
        hit("demo_request", 120),  # outside 90 days: 0 (and the sum is not 80)
        hit("newsletter_open", 1),  # no rule for this kind
    ]
    # fit = 20 (title contains "vp") + 15 (350 ≥ 200) + 0 (acme.io is not gmail.com) = 35
    # engagement = 22.5 + 8 + 40 = 70.5 -> 71 (half up)
    # score = 35 + 70.5 = 105.5 -> 106
    result = score_lead(DEFAULT_B2B, lead_facts(lead), interactions, NOW)
    assert (result.score, result.fit_score, result.engagement_score) == (106, 35, 71)
    assert result.qualifies(DEFAULT_B2B)  # 106 ≥ 60
    assert list(result.breakdown) == [
        {"rule_id": 6, "type": "behavior", "label": "Demo request", "points": 40.0},
        {"rule_id": 4, "type": "behavior", "label": "Pricing page", "points": 22.5},
        {"rule_id": 1, "type": "fit", "label": "Decision-maker title", "points": 20.0},
        {"rule_id": 2, "type": "fit", "label": "Mid-market+", "points": 15.0},
        {"rule_id": 5, "type": "behavior", "label": "Whitepaper", "points": 8.0},
    ]


def test_the_default_b2b_model_scores_a_capped_gmail_lead_who_unsubscribed_below_zero():
    facts = lead_facts({"email": "bob@Gmail.com ", "job_title": "Marketing Coordinator"})
    interactions = [hit("pricing_page_view", 0) for _ in range(4)]  # 4 × 10 = 40 -> cap 30
    interactions.append(hit("unsubscribe", 3))  # -25, no decay
    # fit = -10 (gmail.com); title has none of the words; size missing so gte fails
    # engagement = 30 - 25 = 5; score = -10 + 5 = -5
    result = score_lead(DEFAULT_B2B, facts, interactions, NOW)
    assert (result.score, result.fit_score, result.engagement_score) == (-5, -10, 5)
    assert not result.qualifies(DEFAULT_B2B)
    assert [(r["label"], r["points"]) for r in result.breakdown] == [
        ("Pricing page", 30.0),
        ("Unsubscribed", -25.0),
        ("Free mail", -10.0),
    ]


# --------------------------------------------------------------------------
# Fit rules
# --------------------------------------------------------------------------


def test_it_adds_the_points_of_every_fit_rule_that_holds():
    model = fit_model(
        fit("country", "equals", "de", 5, id=1),
        fit("company_size", "between", [100, 500], 7, id=2),
        fit("industry", "in", ["retail"], 100, id=3),  # does not hold
    )
    # 5 + 7 = 12
    result = score_lead(model, {"country": "DE", "company_size": 100, "industry": "SaaS"}, [], NOW)
    assert (result.score, result.fit_score, result.engagement_score) == (12, 12, 0)


@pytest.mark.parametrize(
    "rule, facts, expected",
    [
        (fit("job_title", "equals", "cto"), {"job_title": " CTO "}, 10),
        (fit("job_title", "not_equals", "cto"), {"job_title": "CEO"}, 10),
        (fit("country", "in", ["de", "at"]), {"country": "AT"}, 10),
        (fit("country", "not_in", ["de", "at"]), {"country": "CH"}, 10),
        (fit("company", "contains", "bank"), {"company": "Deutsche Bank AG"}, 10),
        (fit("job_title", "contains_any", ["vp", "head"]), {"job_title": "Head of IT"}, 10),
        (fit("first_name", "starts_with", "an"), {"first_name": "Anna"}, 10),
        (fit("email", "ends_with", ".edu"), {"email": "x@MIT.EDU"}, 10),
        (fit("email_domain", "ends_with_any", [".edu", ".gov"]), {"email": "x@nasa.gov"}, 10),
        (fit("company_size", "equals", 50), {"company_size": 50}, 10),
        (fit("company_size", "not_equals", 50), {"company_size": 51}, 10),
        (fit("company_size", "in", [10, 50]), {"company_size": 10}, 10),
        (fit("company_size", "not_in", [10, 50]), {"company_size": 11}, 10),
        (fit("annual_revenue", "gte", 1_000_000), {"annual_revenue": Decimal("1000000.00")}, 10),
        (fit("annual_revenue", "lte", 1_000_000), {"annual_revenue": Decimal("999999.99")}, 10),
        (fit("company_size", "between", [10, 50]), {"company_size": 50}, 10),
        (fit("seniority", "is_set", None), {"seniority": "vp"}, 10),
        (fit("seniority", "is_not_set", None), {"seniority": ""}, 10),
        # and the failing side of the same operators
        (fit("job_title", "equals", "cto"), {"job_title": "CTO office"}, 0),
        (fit("company_size", "between", [10, 50]), {"company_size": 51}, 0),
        (fit("annual_revenue", "lte", 1_000_000), {"annual_revenue": Decimal("1000000.01")}, 0),
    ],
)
def test_each_operator_adds_points_exactly_when_it_holds(rule, facts, expected):
    assert fit_total(rule, **facts) == expected


@pytest.mark.parametrize(
    "rule",
    [
        fit("country", "not_equals", "de"),
        fit("country", "not_in", ["de"]),
        fit("company_size", "not_equals", 5),
        fit("company_size", "lte", 1000),
        fit("country", "is_set", None),
    ],
)
def test_a_missing_field_matches_no_operator_but_is_not_set(rule):
    assert fit_total(rule, country=None, company_size=None) == 0
    assert fit_total(rule, country="") == 0
    assert fit_total(fit(rule.field, "is_not_set", None), country=None) == 10


def test_the_email_domain_is_the_lowercased_part_after_the_last_at():
    facts = lead_facts({"email": '"odd@name"@Sub.Example.COM'})
    assert facts["email_domain"] == "sub.example.com"
    assert lead_facts({"email": "no-at-sign"})["email_domain"] is None
    assert lead_facts({"email": None})["email_domain"] is None


def test_lead_facts_reads_objects_and_mappings_alike_and_ignores_other_fields():
    obj = SimpleNamespace(email="a@b.io", company_size=5, stage="mql")
    facts = lead_facts(obj)
    assert facts == lead_facts({"email": "a@b.io", "company_size": 5, "stage": "mql"})
    assert "stage" not in facts and facts["job_title"] is None and facts["email_domain"] == "b.io"


def test_it_derives_the_email_domain_when_given_raw_facts():
    assert fit_total(fit("email_domain", "equals", "gmail.com"), email="x@GMAIL.com") == 10


def test_a_negative_fit_rule_lowers_the_score():
    result = score_lead(
        fit_model(fit("email_domain", "in", ["gmail.com"], -10)), {"email": "x@gmail.com"}, [], NOW
    )
    assert (result.score, result.fit_score) == (-10, -10)


def test_fit_points_accepts_decimal_and_float_points():
    model = fit_model(
        fit("country", "is_set", None, Decimal("2.25"), id=1), fit("country", "is_set", None, 0.25, id=2)
    )
    assert [p for _, p in fit_points(model, {"country": "DE"})] == [2.25, 0.25]
    assert score_lead(model, {"country": "DE"}, [], NOW).score == 3  # 2.5 -> 3


# --------------------------------------------------------------------------
# Behaviour rules: decay, caps, windows, properties
# --------------------------------------------------------------------------


def test_it_halves_points_after_one_half_life():
    # 10 × 0.5^(14/14) = 5.0
    assert engagement(behavior(points=10, half_life_days=14), hit(age_days=14)) == pytest.approx(5.0)


def test_it_decays_continuously_between_half_lives():
    # 10 × 0.5^(7/14) = 10 / √2 = 7.0710678...
    rule = behavior(points=10, half_life_days=14)
    assert engagement(rule, hit(age_days=7)) == pytest.approx(7.0710678, abs=1e-6)


def test_it_measures_age_in_fractional_days():
    # 12 hours = 0.5 day; 8 × 0.5^(0.5/1) = 8 / √2 = 5.656854...
    fact = InteractionFact("pricing_page_view", NOW - timedelta(hours=12))
    assert engagement(behavior(points=8, half_life_days=1), fact) == pytest.approx(5.656854, abs=1e-6)


def test_without_a_half_life_points_do_not_decay():
    assert engagement(behavior(points=10), hit(age_days=3650)) == 10


def test_it_caps_a_positive_rule_at_max_points():
    # 4 × 10 = 40 -> 30
    assert engagement(behavior(points=10, max_points=30), *[hit() for _ in range(4)]) == 30


def test_it_caps_a_negative_rule_at_minus_max_points():
    # 3 × -25 = -75 -> -50
    rule = behavior("unsubscribe", points=-25, max_points=50)
    assert engagement(rule, *[hit("unsubscribe") for _ in range(3)]) == -50


def test_the_cap_applies_to_the_decayed_sum_not_each_interaction():
    # 10 + 5 + 2.5 = 17.5 under a cap of 20; one more fresh visit: 27.5 -> 20
    rule = behavior(points=10, half_life_days=14, max_points=20)
    assert engagement(rule, hit(age_days=0), hit(age_days=14), hit(age_days=28)) == pytest.approx(17.5)
    assert engagement(rule, hit(age_days=0), hit(age_days=0), hit(age_days=14), hit(age_days=28)) == 20


def test_max_points_accepts_decimal():
    assert engagement(behavior(points=Decimal("7.5"), max_points=Decimal("10")), hit(), hit()) == 10


def test_an_interaction_exactly_at_the_window_edge_counts_and_one_just_outside_does_not():
    rule = behavior("demo_request", points=40, within_days=90)
    assert engagement(rule, hit("demo_request", 90)) == 40
    outside = InteractionFact("demo_request", days_ago(90) - timedelta(microseconds=1))
    assert engagement(rule, outside) == 0


def test_a_zero_day_window_counts_only_interactions_at_now():
    rule = behavior(points=1, within_days=0)
    assert engagement(rule, hit(age_days=0)) == 1
    assert engagement(rule, InteractionFact("pricing_page_view", NOW - timedelta(seconds=1))) == 0


def test_future_interactions_are_ignored():
    rule = behavior(points=10)
    assert engagement(rule, InteractionFact("pricing_page_view", NOW + timedelta(seconds=1))) == 0
    assert engagement(rule, InteractionFact("pricing_page_view", NOW)) == 10


def test_only_interactions_of_the_rules_kind_count():
    assert engagement(behavior("demo_request", points=40), hit("demo_requested"), hit("DEMO_REQUEST")) == 0


def test_a_property_condition_filters_interactions_with_the_fit_rule_semantics():
    rule = behavior(
        "content_download",
        points=8,
        property={"key": "asset_type", "operator": "equals", "value": "whitepaper"},
    )
    assert engagement(rule, hit("content_download", asset_type=" WhitePaper ")) == 8
    assert engagement(rule, hit("content_download", asset_type="ebook")) == 0
    assert engagement(rule, hit("content_download")) == 0  # key missing
    assert engagement(rule, hit("content_download", asset_type=None)) == 0


def test_a_missing_property_matches_only_is_not_set():
    not_eq = behavior("page_view", property={"key": "utm", "operator": "not_equals", "value": "ads"})
    unset = behavior("page_view", property={"key": "utm", "operator": "is_not_set"})
    assert engagement(not_eq, hit("page_view")) == 0
    assert engagement(unset, hit("page_view")) == 10
    assert engagement(unset, hit("page_view", utm="ads")) == 0


def test_a_numeric_property_condition_compares_numbers_even_when_sent_as_text():
    rule = behavior("video_watch", points=5, property={"key": "seconds", "operator": "gte", "value": 60})
    # 90 ≥ 60 and "120" ≥ 60 count; 30 and "a lot" do not -> 2 × 5 = 10
    facts = [
        hit("video_watch", seconds=90),
        hit("video_watch", seconds="120"),
        hit("video_watch", seconds=30),
        hit("video_watch", seconds="a lot"),
    ]
    assert engagement(rule, *facts) == 10


def test_negative_behaviour_points_lower_the_score():
    model = behavior_model(behavior("unsubscribe", points=-25))
    result = score_lead(model, {}, [hit("unsubscribe", 400)], NOW)
    assert (result.score, result.fit_score, result.engagement_score) == (-25, 0, -25)


def test_two_rules_on_the_same_kind_both_count_the_interaction():
    model = behavior_model(
        behavior("webinar", points=10, id=1, label="Any webinar"),
        behavior(
            "webinar",
            points=5,
            id=2,
            label="Long webinar",
            property={"key": "minutes", "operator": "gte", "value": 30},
        ),
    )
    result = score_lead(model, {}, [hit("webinar", minutes=45)], NOW)
    assert result.score == 15


def test_later_facts_with_the_same_key_are_ignored():
    fact = InteractionFact("pricing_page_view", days_ago(0), key="evt-1")
    again = InteractionFact("pricing_page_view", days_ago(0), key="evt-1")
    other = InteractionFact("pricing_page_view", days_ago(0), key="evt-2")
    assert engagement(behavior(points=10), fact, again, other) == 20


def test_it_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="timezone-aware"):
        InteractionFact("x", datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        score_lead(behavior_model(), {}, [], datetime(2025, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    "kw", [{"max_points": 0}, {"max_points": -5}, {"half_life_days": 0}, {"within_days": -1}]
)
def test_it_refuses_a_behaviour_rule_with_a_non_positive_cap_or_half_life(kw):
    with pytest.raises(ValueError):
        behavior(**kw)


def test_behavior_points_lists_every_rule_in_model_order_with_zero_when_unused():
    model = behavior_model(behavior("a", id=1), behavior("b", id=2, points=3))
    assert [(r.id, p) for r, p in behavior_points(model, [hit("b")], NOW)] == [(1, 0.0), (2, 3.0)]


# --------------------------------------------------------------------------
# Rounding
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, expected",
    [
        (2.5, 3),
        (-2.5, -3),
        (3.5, 4),
        (0.5, 1),
        (-0.5, -1),  # halves go away from zero
        (2.4, 2),
        (-2.4, -2),
        (2.6, 3),
        (0.0, 0),
        (-0.0, 0),
        (2.49999999, 3),  # 2.500000 at 6 dp -> 3
        (2.4999994, 2),  # 2.499999 at 6 dp -> 2
        (-2.49999999, -3),
        (0.1 + 0.2 + 2.2, 3),  # 2.5000000000000004 and 2.4999999999999996 agree
        (2.4999999999999996, 3),
    ],
)
def test_it_rounds_half_up_after_six_decimal_places(x, expected):
    assert round_half_up(x) == expected


def test_it_rounds_each_score_half_up_independently():
    model = ModelSpec(
        fit_rules=(fit("country", "is_set", None, 2.5, id=1, label="Country"),),
        behavior_rules=(behavior("x", points=Decimal("-1.5"), id=2, label="X"),),
        mql_threshold=1,
    )
    # fit 2.5 -> 3; engagement -1.5 -> -2; total 1.0 -> 1 (= 3 + -2 here; see the next test)
    result = score_lead(model, {"country": "DE"}, [hit("x")], NOW)
    assert (result.score, result.fit_score, result.engagement_score) == (1, 3, -2)


def test_the_total_is_rounded_from_the_unrounded_parts():
    model = ModelSpec(
        fit_rules=(fit("country", "is_set", None, 0.4, id=1),),
        behavior_rules=(behavior("x", points=0.4, id=2),),
        mql_threshold=1,
    )
    # fit 0.4 -> 0; engagement 0.4 -> 0; total 0.8 -> 1
    result = score_lead(model, {"country": "DE"}, [hit("x")], NOW)
    assert (result.score, result.fit_score, result.engagement_score) == (1, 0, 0)


# --------------------------------------------------------------------------
# Breakdown
# --------------------------------------------------------------------------


def test_the_breakdown_sorts_by_absolute_points_then_label_and_omits_zeros():
    model = ModelSpec(
        fit_rules=(
            fit("country", "is_set", None, 5, id=1, label="b country"),
            fit("country", "is_set", None, -5, id=2, label="a negative"),
            fit("industry", "is_set", None, 50, id=3, label="never holds"),
            fit("country", "is_set", None, 0, id=4, label="zero points"),
        ),
        behavior_rules=(
            behavior("x", points=10, half_life_days=1, id=5, label="decayed"),
            behavior("y", points=-7, id=6, label="c big negative"),
        ),
        mql_threshold=0,
    )
    # decayed: 10 × 0.5^(1/1) = 5 -> ties with ±5; order by label: "a", "b", "decayed"
    result = score_lead(model, {"country": "DE"}, [hit("x", 1), hit("y")], NOW)
    assert [(r["label"], r["type"], r["rule_id"], r["points"]) for r in result.breakdown] == [
        ("c big negative", "behavior", 6, -7.0),
        ("a negative", "fit", 2, -5.0),
        ("b country", "fit", 1, 5.0),
        ("decayed", "behavior", 5, 5.0),
    ]


def test_breakdown_points_are_rounded_to_two_decimals_and_tiny_ones_dropped():
    model = behavior_model(
        behavior("x", points=10, half_life_days=14, id=1, label="week-old"),
        behavior("y", points=10, half_life_days=1, id=2, label="ancient"),
    )
    # week-old: 10 × 0.5^(7/14) = 7.0710678 -> 7.07; ancient: 10 × 0.5^30 ≈ 9e-9 -> 0.00, dropped
    result = score_lead(model, {}, [hit("x", 7), hit("y", 30)], NOW)
    assert list(result.breakdown) == [{"rule_id": 1, "type": "behavior", "label": "week-old", "points": 7.07}]
    assert result.score == 7


# --------------------------------------------------------------------------
# Qualification
# --------------------------------------------------------------------------


def test_a_lead_qualifies_at_exactly_the_threshold():
    model = fit_model(threshold=60)
    assert ScoreResult(60, 0, 60, ()).qualifies(model)
    assert not ScoreResult(59, 0, 59, ()).qualifies(model)


def test_a_minimum_fit_also_has_to_be_met_when_set():
    model = fit_model(threshold=60, min_fit=Decimal("20"))
    assert ScoreResult(80, 20, 60, ()).qualifies(model)
    assert not ScoreResult(100, 19, 81, ()).qualifies(model)  # engaged but poor fit


# --------------------------------------------------------------------------
# Bulk
# --------------------------------------------------------------------------


def test_score_leads_scores_each_lead_like_score_lead():
    leads = [
        ("jane", {"job_title": "VP Sales", "company_size": 500}, [hit("demo_request", 1)]),
        ("bob", lead_facts({"email": "bob@gmail.com"}), [hit("unsubscribe")]),
        ("nobody", {}, []),
    ]
    results = score_leads(DEFAULT_B2B, leads, NOW)
    assert results == {key: score_lead(DEFAULT_B2B, facts, ints, NOW) for key, facts, ints in leads}
    assert results["jane"].score == 75 and results["bob"].score == -35 and results["nobody"].score == 0
