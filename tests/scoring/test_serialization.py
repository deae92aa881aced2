"""A scoring model as JSON: export shape, validation messages, import, round trip."""

import json
from decimal import Decimal

import pytest

from scoring import services
from scoring.models import BehaviorRule, FitRule, ScoringModel
from scoring.serialization import (
    ModelFileError,
    model_duplicate,
    model_from_dict,
    model_to_dict,
    model_to_json,
    parse_model_json,
    validate_model_dict,
)
from tests.scoring.factories import (
    EXAMPLE_MODEL,
    BehaviorRuleFactory,
    FitRuleFactory,
    ScoringModelFactory,
    build_example_model,
    example_dict,
)

pytestmark = pytest.mark.django_db


def db_state():
    """Everything an import could change."""
    return (
        list(ScoringModel.objects.values_list("name", "status", "version", "mql_threshold", "mql_min_fit")),
        list(FitRule.objects.values_list("model__name", "label", "field", "operator", "value", "points")),
        list(BehaviorRule.objects.values_list("model__name", "label", "kind__slug", "points")),
    )


# --- export ------------------------------------------------------------------------------------


def test_export_gives_exactly_the_designs_shape():
    model = build_example_model()

    assert model_to_dict(model) == EXAMPLE_MODEL


def test_export_writes_integral_numbers_as_ints_and_others_as_floats():
    model = ScoringModelFactory(mql_threshold=Decimal("60.00"), mql_min_fit=Decimal("12.50"))
    FitRuleFactory(model=model, label="Half", points=Decimal("2.50"))
    BehaviorRuleFactory(model=model, label="B", points=Decimal("-3.00"), half_life_days=Decimal("7.50"))

    data = model_to_dict(model)

    assert data["mql_threshold"] == 60 and isinstance(data["mql_threshold"], int)
    assert data["mql_min_fit"] == 12.5 and isinstance(data["mql_min_fit"], float)
    assert data["fit_rules"][0]["points"] == 2.5
    assert data["behavior_rules"][0] == {"label": "B", "kind": "pricing_page_view", "points": -3, "half_life_days": 7.5}
    assert isinstance(data["behavior_rules"][0]["points"], int)


def test_export_omits_unset_optional_behaviour_keys_and_keeps_rule_order():
    model = ScoringModelFactory()
    BehaviorRuleFactory(model=model, label="Second", position=2)
    BehaviorRuleFactory(model=model, label="First", position=1, property={}, within_days=0)

    rules = model_to_dict(model)["behavior_rules"]

    assert [r["label"] for r in rules] == ["First", "Second"]
    assert rules[0] == {"label": "First", "kind": "pricing_page_view", "points": 10, "within_days": 0}
    assert rules[1] == {"label": "Second", "kind": "pricing_page_view", "points": 10}


def test_model_to_json_is_indented_by_two():
    text = model_to_json(build_example_model())

    assert text.startswith('{\n  "name": "Default B2B",')
    assert json.loads(text) == EXAMPLE_MODEL


# --- import and round trip ---------------------------------------------------------------------


def test_round_trip_of_the_designs_example():
    model = model_from_dict(example_dict())

    assert model.status == ScoringModel.Status.DRAFT
    assert model_to_dict(model) == EXAMPLE_MODEL
    assert model_to_dict(model_from_dict(example_dict(name="Again"))) == example_dict(name="Again")


def test_round_trip_of_every_operator_and_optional_key():
    data = {
        "name": "Everything",
        "mql_threshold": 55.5,
        "mql_min_fit": 10,
        "fit_rules": [
            {"label": "a", "field": "country", "operator": "equals", "value": "DE", "points": 1},
            {"label": "b", "field": "country", "operator": "not_in", "value": ["US", "CA"], "points": 1.25},
            {"label": "c", "field": "annual_revenue", "operator": "between", "value": [1000, 5000.5], "points": 3},
            {"label": "d", "field": "industry", "operator": "is_not_set", "value": None, "points": -2},
            {"label": "e", "field": "email", "operator": "ends_with_any", "value": [".de", ".at"], "points": 4},
        ],
        "behavior_rules": [
            {
                "label": "f",
                "kind": "webinar_attended",
                "points": 5,
                "property": {"key": "minutes", "operator": "gte", "value": 30},
                "max_points": 12.5,
                "half_life_days": 30,
                "within_days": 180,
            }
        ],
    }

    assert model_to_dict(model_from_dict(data)) == data


def test_the_value_of_a_presence_operator_may_be_left_out_and_exports_as_null():
    data = example_dict(fit_rules=[{"label": "Has industry", "field": "industry", "operator": "is_set", "points": 5}])

    exported = model_to_dict(model_from_dict(data))

    assert exported["fit_rules"] == [
        {"label": "Has industry", "field": "industry", "operator": "is_set", "value": None, "points": 5}
    ]


def test_import_stores_rules_in_file_order_and_strips_labels():
    data = example_dict(name="  Spaced  ")
    data["fit_rules"][0]["label"] = "  Decision-maker title "

    model = model_from_dict(data)

    assert model.name == "Spaced"
    assert list(model.fit_rules.values_list("label", "position")) == [
        ("Decision-maker title", 0),
        ("Mid-market+", 1),
        ("Free mail", 2),
    ]


def test_a_model_with_the_same_name_is_refused_unless_replaced():
    existing = build_example_model()
    before = db_state()

    with pytest.raises(ModelFileError) as exc:
        model_from_dict(example_dict(mql_threshold=70))

    assert exc.value.messages == [
        'a model named "Default B2B" already exists; rename the file\'s model or replace its rules (--replace)'
    ]
    assert db_state() == before

    replaced = model_from_dict(example_dict(mql_threshold=70, fit_rules=[]), replace=True)

    assert replaced.pk == existing.pk
    assert replaced.mql_threshold == 70
    assert replaced.fit_rules.count() == 0
    assert replaced.behavior_rules.count() == 4


def test_replacing_an_archived_model_makes_it_a_draft():
    ScoringModelFactory(name="Old", status=ScoringModel.Status.ARCHIVED, version=3)

    model = model_from_dict(example_dict(name="Old"), replace=True)

    assert model.status == ScoringModel.Status.DRAFT
    assert model.version == 3


def test_the_active_model_is_never_replaced():
    ScoringModelFactory(name="Default B2B", status=ScoringModel.Status.ACTIVE)
    before = db_state()

    with pytest.raises(ModelFileError) as exc:
        model_from_dict(example_dict(), replace=True)

    assert "already exists and is the active model" in exc.value.messages[0]
    assert db_state() == before


def test_activate_publishes_the_import_and_archives_the_previous_model(marketer, django_capture_on_commit_callbacks):
    previous = ScoringModelFactory(name="Previous", status=ScoringModel.Status.ACTIVE, version=4)

    with django_capture_on_commit_callbacks(execute=False):
        model = model_from_dict(example_dict(), activate=True, by=marketer)

    assert model.status == ScoringModel.Status.ACTIVE
    assert model.version == 1
    assert model.published_by == marketer
    previous.refresh_from_db()
    assert previous.status == ScoringModel.Status.ARCHIVED
    assert model.rescore_runs.count() == 1


def test_a_failing_publish_rolls_the_import_back(monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("broker down")

    monkeypatch.setattr(services, "model_publish", boom)
    before = db_state()

    with pytest.raises(RuntimeError):
        model_from_dict(example_dict(), activate=True)

    assert db_state() == before


def test_duplicate_copies_the_rules_into_a_draft():
    source = build_example_model(status=ScoringModel.Status.ACTIVE, version=7)

    copy = model_duplicate(source, name="Default B2B (copy)")

    assert copy.pk != source.pk
    assert copy.status == ScoringModel.Status.DRAFT
    assert copy.version == 0
    assert model_to_dict(copy) == example_dict(name="Default B2B (copy)")
    assert model_to_dict(source) == EXAMPLE_MODEL


# --- validation: every problem, naming the rule and field ---------------------------------------


def test_the_designs_example_is_valid():
    assert validate_model_dict(example_dict()) == []


def bad(path_and_change):
    """example_dict() with one change applied: (section, index, key, value) or a top-level dict."""
    data = example_dict()
    section, index, key, value = path_and_change
    if value is DELETE:
        del data[section][index][key]
    else:
        data[section][index][key] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    "change, message",
    [
        (
            ("fit_rules", 1, "value", [500, 10]),
            'fit_rules[1] "Mid-market+": field "value": "gte" needs a single value, not a list; got [500, 10]',
        ),
        (
            ("fit_rules", 0, "operator", "gte"),
            'fit_rules[0] "Decision-maker title": field "operator": operator "gte" does not suit text field '
            '"job_title"',
        ),
        (
            ("fit_rules", 0, "value", "vp"),
            'fit_rules[0] "Decision-maker title": field "value": "contains_any" needs a non-empty list; got "vp"',
        ),
        (
            ("fit_rules", 1, "value", "two hundred"),
            'fit_rules[1] "Mid-market+": field "value": "gte" needs a number, got "two hundred"',
        ),
        (
            ("fit_rules", 2, "field", "mail_domain"),
            'fit_rules[2] "Free mail": field "field": unknown field "mail_domain"; expected one of',
        ),
        (
            ("fit_rules", 2, "operator", "is"),
            'fit_rules[2] "Free mail": field "operator": unknown operator "is"',
        ),
        (
            ("fit_rules", 1, "points", "15"),
            'fit_rules[1] "Mid-market+": field "points": must be a number; got text "15"',
        ),
        (
            ("fit_rules", 1, "points", 1.005),
            'fit_rules[1] "Mid-market+": field "points": may have at most 2 decimal places; got 1.005',
        ),
        (
            ("fit_rules", 1, "label", DELETE),
            'fit_rules[1]: field "label": missing; every fit rule needs it',
        ),
        (
            ("fit_rules", 1, "label", "  "),
            'fit_rules[1]: field "label": must be non-empty text; got "  "',
        ),
        (
            ("fit_rules", 0, "points", DELETE),
            'fit_rules[0] "Decision-maker title": field "points": missing; every fit rule needs it',
        ),
        (
            ("fit_rules", 0, "weight", 3),
            'fit_rules[0] "Decision-maker title": unknown key "weight"; a fit rule has label, field, operator, '
            "value, points",
        ),
        (
            ("behavior_rules", 0, "kind", "pricing_view"),
            'behavior_rules[0] "Pricing page": field "kind": unknown interaction kind "pricing_view"; known kinds: ',
        ),
        (
            ("behavior_rules", 0, "max_points", -30),
            'behavior_rules[0] "Pricing page": field "max_points": must be a positive number; got -30',
        ),
        (
            ("behavior_rules", 0, "half_life_days", 0),
            'behavior_rules[0] "Pricing page": field "half_life_days": must be a positive number; got 0',
        ),
        (
            ("behavior_rules", 2, "within_days", 1.5),
            'behavior_rules[2] "Demo request": field "within_days": must be a whole number of days; got 1.5',
        ),
        (
            ("behavior_rules", 2, "within_days", -1),
            'behavior_rules[2] "Demo request": field "within_days": must be zero or more days; got -1',
        ),
        (
            ("behavior_rules", 1, "property", {"key": "asset_type", "operator": "gte", "value": "x"}),
            'behavior_rules[1] "Whitepaper": field "property.value": "gte" needs a number, got "x"',
        ),
        (
            ("behavior_rules", 1, "property", {"key": "", "operator": "equals", "value": "x"}),
            'behavior_rules[1] "Whitepaper": field "property.key": the property key must be non-empty text',
        ),
        (
            ("behavior_rules", 1, "property", "asset_type=whitepaper"),
            'behavior_rules[1] "Whitepaper": field "property": a property condition must be an object',
        ),
        (
            ("behavior_rules", 3, "kind", DELETE),
            'behavior_rules[3] "Unsubscribed": field "kind": missing; every behaviour rule needs it',
        ),
        (
            ("behavior_rules", 3, "points", True),
            'behavior_rules[3] "Unsubscribed": field "points": must be a number; got true/false true',
        ),
    ],
)
def test_each_invalid_rule_is_refused_naming_rule_and_field_and_nothing_is_stored(change, message):
    data = bad(change)
    before = db_state()

    problems = validate_model_dict(data)
    with pytest.raises(ModelFileError) as exc:
        model_from_dict(data)

    assert any(p.startswith(message) for p in problems), problems
    assert exc.value.messages == problems
    assert db_state() == before


def test_a_reversed_between_names_the_rule_and_value():
    data = example_dict()
    data["fit_rules"][1].update(operator="between", value=[500, 10])

    assert validate_model_dict(data) == [
        'fit_rules[1] "Mid-market+": field "value": "between" needs [low, high] with low ≤ high; got [500, 10]'
    ]


def test_every_problem_is_reported_at_once():
    data = example_dict(mql_threshold="sixty", extra=1)
    data["fit_rules"][1].update(operator="between", value=[500, 10])
    data["behavior_rules"][0]["kind"] = "pricing_view"
    data["behavior_rules"][3]["max_points"] = -5

    problems = validate_model_dict(data)

    assert problems == [
        'unknown top-level key "extra"; a scoring model has name, mql_threshold, mql_min_fit, fit_rules, '
        "behavior_rules",
        'field "mql_threshold": must be a number; got text "sixty"',
        'fit_rules[1] "Mid-market+": field "value": "between" needs [low, high] with low ≤ high; got [500, 10]',
        problems[3],
        'behavior_rules[3] "Unsubscribed": field "max_points": must be a positive number; got -5 '
        "(max_points caps the rule's total in either direction, so it is never negative)",
    ]
    assert problems[3].startswith('behavior_rules[0] "Pricing page": field "kind": unknown interaction kind')


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "a scoring model must be a JSON object with name, mql_threshold"),
        ({"mql_threshold": 60}, 'field "name": missing; a scoring model needs it'),
        ({"name": "x"}, 'field "mql_threshold": missing; a scoring model needs it'),
        ({"name": "", "mql_threshold": 60}, 'field "name": must be non-empty text; got ""'),
        ({"name": "x" * 101, "mql_threshold": 60}, 'field "name": must be at most 100 characters; got 101'),
        ({"name": "x", "mql_threshold": 60, "mql_min_fit": "5"}, 'field "mql_min_fit": must be a number'),
        ({"name": "x", "mql_threshold": 10**7}, 'field "mql_threshold": must be between -999999.99 and 999999.99'),
        ({"name": "x", "mql_threshold": 60, "fit_rules": {}}, 'field "fit_rules": must be a list of rules'),
        ({"name": "x", "mql_threshold": 60, "behavior_rules": "none"}, 'field "behavior_rules": must be a list'),
        ({"name": "x", "mql_threshold": 60, "fit_rules": ["vp"]}, "fit_rules[0]: each fit rule must be an object"),
    ],
)
def test_top_level_problems(data, message):
    problems = validate_model_dict(data)

    assert any(p.startswith(message) for p in problems), problems
    with pytest.raises(ModelFileError):
        model_from_dict(data)
    assert not ScoringModel.objects.exists()


def test_rule_lists_may_be_left_out():
    model = model_from_dict({"name": "Bare", "mql_threshold": 50})

    assert model_to_dict(model) == {
        "name": "Bare", "mql_threshold": 50, "mql_min_fit": None, "fit_rules": [], "behavior_rules": []
    }


def test_duplicate_labels_within_a_list_are_refused():
    data = example_dict()
    data["fit_rules"][2]["label"] = "mid-market+"

    assert validate_model_dict(data) == [
        'fit_rules[2] "mid-market+": field "label": the same label as fit_rules[1]; labels must differ '
        "because the score breakdown names rules by label"
    ]


def test_a_missing_operator_still_checks_the_field():
    data = example_dict()
    del data["fit_rules"][0]["operator"]
    data["fit_rules"][0]["field"] = "title"

    problems = validate_model_dict(data)

    assert problems[0] == 'fit_rules[0] "Decision-maker title": field "operator": missing; every fit rule needs it'
    assert problems[1].startswith('fit_rules[0] "Decision-maker title": field "field": unknown field "title"')


# --- parsing -----------------------------------------------------------------------------------


def test_parse_reports_where_the_json_breaks():
    with pytest.raises(ModelFileError) as exc:
        parse_model_json('{"name": "x",\n "mql_threshold": }')

    assert exc.value.messages == ["not valid JSON: Expecting value (line 2, column 19)"]


def test_parse_refuses_nan_and_non_utf8():
    with pytest.raises(ModelFileError, match="NaN is not a number JSON allows"):
        parse_model_json('{"mql_threshold": NaN}')
    with pytest.raises(ModelFileError, match="not UTF-8"):
        parse_model_json(b"\xff\xfe{")


def test_parse_accepts_bytes_with_a_bom():
    assert parse_model_json("\ufeff{}".encode()) == {}
