"""The rule vocabulary: matches() per operator, and validation messages."""

from decimal import Decimal

import pytest

from scoring.rules import (
    LEAD_FIELDS,
    NUMBER,
    OPERATORS,
    OPERATORS_BY_TYPE,
    TEXT,
    matches,
    validate_condition,
    validate_fit_rule,
    validate_property_condition,
)

# --------------------------------------------------------------------------
# The vocabulary tables
# --------------------------------------------------------------------------


def test_it_lists_the_lead_fields_with_their_types():
    assert LEAD_FIELDS == {
        "email": "text",
        "email_domain": "text",
        "first_name": "text",
        "last_name": "text",
        "job_title": "text",
        "seniority": "text",
        "company": "text",
        "industry": "text",
        "country": "text",
        "source": "text",
        "company_size": "number",
        "annual_revenue": "number",
    }


def test_every_operator_suits_at_least_one_type_and_every_suitable_operator_exists():
    by_type = set(OPERATORS_BY_TYPE[TEXT]) | set(OPERATORS_BY_TYPE[NUMBER])
    assert by_type == set(OPERATORS)


def test_text_fields_do_not_offer_numeric_comparisons_and_numbers_do_not_offer_substrings():
    assert not {"gte", "lte", "between"} & set(OPERATORS_BY_TYPE[TEXT])
    assert not {"contains", "contains_any", "starts_with", "ends_with", "ends_with_any"} & set(
        OPERATORS_BY_TYPE[NUMBER]
    )


# --------------------------------------------------------------------------
# matches(): text
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operator, actual, value, expected",
    [
        ("equals", "Germany", "germany", True),  # case-insensitive
        ("equals", "  DE ", "de", True),  # surrounding whitespace stripped
        ("equals", "DE", "FR", False),
        ("not_equals", "DE", "fr", True),
        ("not_equals", "de", "DE", False),
        ("in", "Fintech", ["saas", "FINTECH"], True),
        ("in", "Retail", ["saas", "fintech"], False),
        ("not_in", "Retail", ["saas", "fintech"], True),
        ("not_in", "SaaS", ["saas", "fintech"], False),
        ("contains", "Senior VP Sales", "vp", True),
        ("contains", "Sales Manager", "vp", False),
        ("contains_any", "Head of Growth", ["vp", "HEAD"], True),
        ("contains_any", "Intern", ["vp", "head"], False),
        ("starts_with", "Chief Revenue Officer", "chief", True),
        ("starts_with", "Deputy Chief", "chief", False),
        ("ends_with", "ann@ACME.io", ".IO", True),
        ("ends_with", "ann@acme.com", ".io", False),
        ("ends_with_any", "uni.ac.uk", [".edu", ".ac.uk"], True),
        ("ends_with_any", "acme.com", [".edu", ".ac.uk"], False),
        ("is_set", "x", None, True),
        ("is_not_set", "x", None, False),
    ],
)
def test_it_compares_text_case_insensitively(operator, actual, value, expected):
    assert matches(operator, actual, value) is expected


# --------------------------------------------------------------------------
# matches(): numbers
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operator, actual, value, expected",
    [
        ("equals", 200, 200, True),
        ("equals", Decimal("200.00"), 200, True),  # Decimal field vs int rule
        ("equals", 200, 200.5, False),
        ("not_equals", 201, 200, True),
        ("not_equals", 200, Decimal("200"), False),
        ("in", 50, [10, 50], True),
        ("in", 51, [10, 50], False),
        ("not_in", 51, [10, 50], True),
        ("not_in", 50, [10, 50], False),
        ("gte", 200, 200, True),  # inclusive
        ("gte", 199, 200, False),
        ("lte", 200, 200, True),  # inclusive
        ("lte", 201, 200, False),
        ("between", 10, [10, 500], True),  # low edge inclusive
        ("between", 500, [10, 500], True),  # high edge inclusive
        ("between", Decimal("500.01"), [10, 500], False),
        ("between", 9, [10, 500], False),
    ],
)
def test_it_compares_numbers_numerically(operator, actual, value, expected):
    assert matches(operator, actual, value) is expected


# --------------------------------------------------------------------------
# matches(): missing values
# --------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [None, "", "   "])
@pytest.mark.parametrize(
    "operator, value",
    [
        ("equals", "x"),
        ("not_equals", "x"),
        ("in", ["x"]),
        ("not_in", ["x"]),
        ("contains", "x"),
        ("contains_any", ["x"]),
        ("starts_with", "x"),
        ("ends_with", "x"),
        ("ends_with_any", ["x"]),
        ("gte", 1),
        ("lte", 1),
        ("between", [0, 1]),
        ("not_equals", 1),
        ("not_in", [1]),
        ("is_set", None),
    ],
)
def test_a_missing_value_matches_no_operator_but_is_not_set(missing, operator, value):
    assert matches(operator, missing, value) is False
    assert matches("is_not_set", missing, None) is True


# --------------------------------------------------------------------------
# matches(): inferred types (property conditions)
# --------------------------------------------------------------------------


def test_a_numeric_value_compares_a_numeric_string_property_as_a_number():
    assert matches("gte", "42", 40) is True
    assert matches("equals", "3.0", 3) is True
    assert matches("in", " 7 ", [7, 8]) is True


def test_a_non_numeric_property_never_matches_a_numeric_condition_even_a_negative_one():
    assert matches("gte", "lots", 40) is False
    assert matches("not_equals", "lots", 40) is False
    assert matches("not_in", "lots", [40]) is False
    assert matches("not_equals", True, 1) is False  # a bool is not a number


def test_a_text_value_compares_a_number_property_as_text():
    assert matches("equals", 200, "200") is True
    assert matches("contains", 12345, "234") is True


def test_json_booleans_compare_as_the_words_true_and_false():
    assert matches("equals", True, "TRUE") is True
    assert matches("equals", False, "true") is False


def test_it_refuses_an_unknown_operator_rather_than_scoring_zero():
    with pytest.raises(ValueError, match='unknown operator "near"'):
        matches("near", "x", "y")


# --------------------------------------------------------------------------
# validate_fit_rule(): valid rules
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, operator, value",
    [
        ("job_title", "contains_any", ["vp", "head", "director", "chief"]),
        ("company_size", "gte", 200),
        ("email_domain", "in", ["gmail.com"]),
        ("annual_revenue", "between", [Decimal("1000"), 5000.5]),
        ("annual_revenue", "between", [100, 100]),  # low == high is allowed
        ("country", "is_not_set", None),
        ("company_size", "is_set", None),
        ("company_size", "not_in", [1, 2]),
        ("seniority", "equals", "vp"),
        ("email", "ends_with_any", [".edu"]),
    ],
)
def test_it_accepts_well_formed_fit_rules(field, operator, value):
    assert validate_fit_rule(field, operator, value) == {}


# --------------------------------------------------------------------------
# validate_fit_rule(): every kind of invalid rule names the part at fault
# --------------------------------------------------------------------------


def test_it_rejects_an_unknown_field_naming_the_field():
    errors = validate_fit_rule("foo", "equals", "x")
    assert list(errors) == ["field"]
    assert errors["field"].startswith('unknown field "foo"')


def test_it_rejects_a_field_that_is_not_text_naming_the_field():
    assert "field" in validate_fit_rule(None, "equals", "x")


def test_it_still_reports_a_bad_value_when_the_field_is_unknown():
    errors = validate_fit_rule("foo", "between", [5, 1])
    assert set(errors) == {"field", "value"}


def test_it_rejects_an_unknown_operator_naming_the_operator():
    errors = validate_fit_rule("job_title", "near", "x")
    assert list(errors) == ["operator"]
    assert errors["operator"].startswith('unknown operator "near"')


def test_it_rejects_a_numeric_operator_on_a_text_field_naming_the_operator():
    errors = validate_fit_rule("job_title", "gte", 5)
    assert list(errors) == ["operator"]
    assert errors["operator"].startswith('operator "gte" does not suit text field "job_title"')


def test_it_rejects_a_substring_operator_on_a_number_field_naming_the_operator():
    errors = validate_fit_rule("company_size", "contains", "1")
    assert errors["operator"].startswith('operator "contains" does not suit number field "company_size"')


def test_it_rejects_a_reversed_between_naming_the_value():
    assert validate_fit_rule("company_size", "between", [500, 10]) == {
        "value": '"between" needs [low, high] with low ≤ high; got [500, 10]'
    }


@pytest.mark.parametrize("value", [[1], [1, 2, 3], "1-2", None, [1, "2"], [True, 2], [float("nan"), 2]])
def test_it_rejects_a_between_that_is_not_two_numbers_naming_the_value(value):
    errors = validate_fit_rule("annual_revenue", "between", value)
    assert list(errors) == ["value"]
    assert errors["value"].startswith('"between" needs [low, high]')


@pytest.mark.parametrize("operator", ["in", "not_in", "contains_any", "ends_with_any"])
@pytest.mark.parametrize("value", [[], "gmail.com", None])
def test_it_rejects_a_list_operator_without_a_non_empty_list_naming_the_value(operator, value):
    errors = validate_fit_rule("email_domain", operator, value)
    assert list(errors) == ["value"]
    assert "needs a non-empty list" in errors["value"]


def test_it_rejects_a_list_with_an_item_of_the_wrong_type_naming_the_value():
    assert "each item is a number" in validate_fit_rule("company_size", "in", [10, "big"])["value"]
    assert "each item is non-empty text" in validate_fit_rule("country", "in", ["DE", 3])["value"]
    assert "each item is non-empty text" in validate_fit_rule("country", "in", ["DE", " "])["value"]


def test_it_rejects_a_list_for_a_scalar_operator_naming_the_value():
    errors = validate_fit_rule("country", "equals", ["DE", "FR"])
    assert errors == {"value": '"equals" needs a single value, not a list; got ["DE", "FR"]'}


def test_it_rejects_text_for_a_number_field_naming_the_value():
    assert validate_fit_rule("company_size", "equals", "200") == {
        "value": '"equals" needs a number, got "200"'
    }
    assert "needs a number" in validate_fit_rule("company_size", "gte", None)["value"]
    assert "needs a number" in validate_fit_rule("company_size", "lte", True)["value"]


def test_it_rejects_a_number_or_blank_for_a_text_field_naming_the_value():
    assert validate_fit_rule("country", "equals", 49) == {"value": '"equals" needs non-empty text, got 49'}
    assert "non-empty text" in validate_fit_rule("job_title", "contains", "  ")["value"]


def test_it_rejects_a_value_on_is_set_naming_the_value():
    assert validate_fit_rule("country", "is_set", "DE") == {"value": '"is_set" takes no value; got "DE"'}
    assert "takes no value" in validate_fit_rule("country", "is_not_set", [])["value"]


def test_validate_condition_returns_plain_messages():
    assert validate_condition(NUMBER, "between", [2, 1]) == [
        '"between" needs [low, high] with low ≤ high; got [2, 1]'
    ]
    assert validate_condition(TEXT, "starts_with", "ab") == []
    assert validate_condition(None, "gte", "ten") == ['"gte" needs a number, got "ten"']


# --------------------------------------------------------------------------
# validate_property_condition()
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cond",
    [
        {"key": "asset_type", "operator": "equals", "value": "whitepaper"},
        {"key": "seconds", "operator": "gte", "value": 30},
        {"key": "plan", "operator": "in", "value": ["pro", 3]},  # mixed types allowed
        {"key": "utm", "operator": "is_set"},  # value may be absent
        {"key": "utm", "operator": "is_not_set", "value": None},
    ],
)
def test_it_accepts_well_formed_property_conditions(cond):
    assert validate_property_condition(cond) == {}


def test_it_rejects_a_property_condition_without_a_key_naming_the_key():
    for key in ({}, {"key": " "}, {"key": 5}):
        cond = {**key, "operator": "is_set"}
        assert list(validate_property_condition(cond)) == ["key"]


def test_it_rejects_a_property_condition_with_an_unknown_operator_naming_the_operator():
    errors = validate_property_condition({"key": "a", "operator": "like", "value": "x"})
    assert list(errors) == ["operator"]


def test_it_rejects_a_property_value_of_the_wrong_shape_naming_the_value():
    bad = [
        {"key": "a", "operator": "gte", "value": "ten"},
        {"key": "a", "operator": "contains", "value": 5},
        {"key": "a", "operator": "between", "value": [9, 1]},
        {"key": "a", "operator": "in", "value": []},
        {"key": "a", "operator": "equals", "value": True},
        {"key": "a", "operator": "equals"},
        {"key": "a", "operator": "is_set", "value": "x"},
    ]
    for cond in bad:
        assert list(validate_property_condition(cond)) == ["value"], cond


def test_it_rejects_a_property_condition_that_is_not_an_object_or_has_extra_keys():
    assert list(validate_property_condition(["a", "equals", "x"])) == ["property"]
    errors = validate_property_condition({"key": "a", "operator": "is_set", "op": "x"})
    assert errors == {"property": "unexpected keys: op"}
