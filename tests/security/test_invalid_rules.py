"""Invalid scoring rules are refused with a message naming the fault, and nothing changes (issue 7,
item 7) — through the admin form (on the active model, where a bad save would rescore every lead)
and through a model file (admin Import with "replace", and `manage.py import_scoring_model --replace
--activate`).

tests/scoring/test_serialization.py checks the file validator itself case by case (every rule key,
every operator shape, top-level keys); tests/scoring/test_admin.py and test_commands.py check a few
faults through each entry point. This file runs every kind of fault through the real entry points and
compares the whole scoring state (models, rules, rescore runs, lead scores) before and after.
"""

import html
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from leads.models import InteractionKind
from scoring.models import RescoreRun
from scoring.serialization import model_to_dict
from tests.security.conftest import model_form_data, snapshot

pytestmark = pytest.mark.django_db


def scoring_state():
    state = snapshot()
    return {
        "models": state["models"],
        "fit_rules": state["fit_rules"],
        "behavior_rules": state["behavior_rules"],
        "leads": state["leads"],
        "rescore_runs": RescoreRun.objects.count(),
    }


# --- the admin form ------------------------------------------------------------------------------

# (what is typed, the field whose box shows the error, the message)
FORM_FAULTS = {
    "unknown field": (
        {"fit_rules-0-field": "mail_domain"},
        "field",
        "Select a valid choice. mail_domain is not one of the available choices.",
    ),
    "unknown operator": (
        {"fit_rules-0-operator": "is"},
        "operator",
        "Select a valid choice. is is not one of the available choices.",
    ),
    "operator unfit for the field": (
        {"fit_rules-0-operator": "gte"},
        "operator",
        'VP title: operator "gte" does not suit text field "job_title"',
    ),
    "missing value": (
        {"fit_rules-0-value": ""},
        "value",
        'VP title: "contains" needs non-empty text, got null',
    ),
    "list for a single value": (
        {"fit_rules-0-value": '["vp", "head"]'},
        "value",
        'VP title: "contains" needs a single value, not a list; got ["vp", "head"]',
    ),
    "single value for a list": (
        {"fit_rules-0-operator": "contains_any"},
        "value",
        'VP title: "contains_any" needs a non-empty list; got "vp"',
    ),
    "list item of the wrong type": (
        {
            "fit_rules-0-field": "company_size",
            "fit_rules-0-operator": "in",
            "fit_rules-0-value": '[1, "two"]',
        },
        "value",
        'VP title: "in" needs a list where each item is a number, got "two"',
    ),
    "text for a number field": (
        {"fit_rules-0-field": "company_size", "fit_rules-0-operator": "gte", "fit_rules-0-value": "big"},
        "value",
        'VP title: "gte" needs a number, got "big"',
    ),
    "reversed between": (
        {
            "fit_rules-0-field": "company_size",
            "fit_rules-0-operator": "between",
            "fit_rules-0-value": "[500, 10]",
        },
        "value",
        'VP title: "between" needs [low, high] with low ≤ high; got [500, 10]',
    ),
    "value on a presence operator": (
        {"fit_rules-0-operator": "is_set", "fit_rules-0-value": "x"},
        "value",
        'VP title: "is_set" takes no value; got "x"',
    ),
    "points not a number": ({"fit_rules-0-points": "ten"}, "points", "Enter a number."),
    "points with 3 decimals": (
        {"fit_rules-0-points": "1.005"},
        "points",
        "Ensure that there are no more than 2 decimal places.",
    ),
    "no label": ({"fit_rules-0-label": ""}, "label", "This field is required."),
    "unknown kind": (
        {"behavior_rules-0-kind": "99999"},
        "kind",
        "Select a valid choice. That choice is not one of the available choices.",
    ),
    "negative max points": (
        {"behavior_rules-0-max_points": "-5"},
        "max_points",
        "Demo request: max points must be positive",
    ),
    "zero half-life": (
        {"behavior_rules-0-half_life_days": "0"},
        "half_life_days",
        "Demo request: half-life must be a positive number of days",
    ),
    "negative window": (
        {"behavior_rules-0-within_days": "-1"},
        "within_days",
        "Ensure this value is greater than or equal to 0.",
    ),
    "fractional window": ({"behavior_rules-0-within_days": "1.5"}, "within_days", "Enter a whole number."),
    "property without a key": (
        {"behavior_rules-0-property_operator": "equals", "behavior_rules-0-property_value": "x"},
        "property",
        'Demo request: the property key must be non-empty text; got ""',
    ),
    "property with an unknown operator": (
        {
            "behavior_rules-0-property_key": "k",
            "behavior_rules-0-property_operator": "like",
            "behavior_rules-0-property_value": "x",
        },
        "property",
        "Select a valid choice. like is not one of the available choices.",
    ),
    "property without an operator": (
        {"behavior_rules-0-property_key": "k", "behavior_rules-0-property_value": "x"},
        "property",
        'Demo request: unknown operator ""',
    ),
    "property value of the wrong type": (
        {
            "behavior_rules-0-property_key": "minutes",
            "behavior_rules-0-property_operator": "gte",
            "behavior_rules-0-property_value": "long",
        },
        "property",
        'Demo request: "gte" needs a number, got "long"',
    ),
    "behaviour points missing": ({"behavior_rules-0-points": ""}, "points", "This field is required."),
    "threshold missing": ({"mql_threshold": ""}, "mql_threshold", "This field is required."),
    "threshold not a number": ({"mql_threshold": "sixty"}, "mql_threshold", "Enter a number."),
    "minimum fit too large": (
        {"mql_min_fit": "1e9"},
        "mql_min_fit",
        "Ensure that there are no more than 8 digits in total.",
    ),
}

_ERRORS = re.compile(r'<ul class="errorlist[^"]*"(?: id="id_([\w-]+)_error")?[^>]*>(.*?)</ul>', re.S)


def errors_by_field(page: str) -> dict[str, list[str]]:
    """Each error list of an admin page under the field it belongs to (Django ties a field's errors to
    it with id="id_<name>_error"; an inline's name is prefix-index-field). "" for form-wide errors."""
    found: dict[str, list[str]] = {}
    for name, items in _ERRORS.findall(page):
        field = name.split("-")[-1]
        found.setdefault(field, []).extend(
            html.unescape(i).strip() for i in re.findall(r"<li>(.*?)</li>", items, re.S)
        )
    return found


@pytest.mark.parametrize("changes, field, message", FORM_FAULTS.values(), ids=FORM_FAULTS.keys())
def test_the_admin_form_refuses_a_bad_rule_naming_it_and_changes_nothing(
    world, client_for, changes, field, message
):
    before = scoring_state()

    response = client_for(world.marketer).post(
        f"/admin/scoring/scoringmodel/{world.active.pk}/change/", model_form_data(world.active, **changes)
    )

    assert response.status_code == 200
    errors = errors_by_field(response.content.decode())
    assert any(text.startswith(message) for text in errors.get(field, [])), errors
    assert scoring_state() == before


def test_a_property_condition_with_several_faults_shows_every_one(world, client_for):
    """No key and a word where "gte" needs a number: both messages, not just the last one."""
    before = scoring_state()
    changes = {
        "behavior_rules-0-property_key": "",
        "behavior_rules-0-property_operator": "gte",
        "behavior_rules-0-property_value": "long",
    }

    response = client_for(world.marketer).post(
        f"/admin/scoring/scoringmodel/{world.active.pk}/change/", model_form_data(world.active, **changes)
    )

    assert response.status_code == 200
    assert errors_by_field(response.content.decode())["property"] == [
        'Demo request: the property key must be non-empty text; got ""',
        'Demo request: "gte" needs a number, got "long"',
    ]
    assert scoring_state() == before


def test_the_form_data_helper_saves_when_nothing_is_wrong(world, client_for):
    """The control for the table above: the same form, unchanged but for the threshold, is saved."""
    response = client_for(world.marketer).post(
        f"/admin/scoring/scoringmodel/{world.active.pk}/change/",
        model_form_data(world.active, mql_threshold="65"),
    )
    assert response.status_code == 302
    world.active.refresh_from_db()
    assert world.active.mql_threshold == 65


# --- a model file ----------------------------------------------------------------------------------


def _fit(**changes):
    def mutate(data):
        data["fit_rules"][0].update(changes)

    return mutate


def _behavior(**changes):
    def mutate(data):
        data["behavior_rules"][0].update(changes)

    return mutate


def _drop(section, key):
    def mutate(data):
        del data[section][0][key]

    return mutate


def _top(**changes):
    def mutate(data):
        data.update(changes)

    return mutate


def _duplicate_label(data):
    data["fit_rules"].append(dict(data["fit_rules"][0], label="vp TITLE"))


FIT = 'fit_rules[0] "VP title": '
BEHAVIOR = 'behavior_rules[0] "Demo request": '

# (how the file is broken, the start of the message that names the fault)
FILE_FAULTS = {
    "unknown field": (_fit(field="mail_domain"), FIT + 'field "field": unknown field "mail_domain"'),
    "unknown operator": (_fit(operator="is"), FIT + 'field "operator": unknown operator "is"'),
    "operator unfit for the field": (
        _fit(operator="gte"),
        FIT + 'field "operator": operator "gte" does not suit',
    ),
    "list for a single value": (_fit(value=["vp"]), FIT + 'field "value": "contains" needs a single value'),
    "list item of the wrong type": (
        _fit(field="company_size", operator="in", value=[1, "two"]),
        FIT + 'field "value": "in" needs a list where each item is a number',
    ),
    "value on a presence operator": (
        _fit(operator="is_set", value="x"),
        FIT + 'field "value": "is_set" takes no value',
    ),
    "reversed between": (
        _fit(field="company_size", operator="between", value=[500, 10]),
        FIT + 'field "value": "between" needs [low, high] with low ≤ high',
    ),
    "points as text": (_fit(points="30"), FIT + 'field "points": must be a number; got text "30"'),
    "points with 3 decimals": (_fit(points=1.005), FIT + 'field "points": may have at most 2 decimal places'),
    "points missing": (_drop("fit_rules", "points"), FIT + 'field "points": missing'),
    "unknown rule key": (_fit(weight=2), FIT + 'unknown key "weight"'),
    "label missing": (_drop("fit_rules", "label"), 'fit_rules[0]: field "label": missing'),
    "duplicate label": (
        _duplicate_label,
        'fit_rules[1] "vp TITLE": field "label": the same label as fit_rules[0]',
    ),
    "unknown kind": (
        _behavior(kind="telepathy"),
        BEHAVIOR + 'field "kind": unknown interaction kind "telepathy"',
    ),
    "negative max points": (
        _behavior(max_points=-5),
        BEHAVIOR + 'field "max_points": must be a positive number',
    ),
    "zero half-life": (
        _behavior(half_life_days=0),
        BEHAVIOR + 'field "half_life_days": must be a positive number',
    ),
    "fractional window": (
        _behavior(within_days=1.5),
        BEHAVIOR + 'field "within_days": must be a whole number',
    ),
    "property with an unknown operator": (
        _behavior(property={"key": "k", "operator": "like", "value": 1}),
        BEHAVIOR + 'field "property.operator": ',
    ),
    "property with an extra key": (
        _behavior(property={"key": "k", "operator": "equals", "value": 1, "x": 2}),
        BEHAVIOR + 'field "property',
    ),
    "property value of the wrong type": (
        _behavior(property={"key": "m", "operator": "gte", "value": "long"}),
        BEHAVIOR + 'field "property.value": "gte" needs a number',
    ),
    "threshold as text": (_top(mql_threshold="sixty"), 'field "mql_threshold": must be a number'),
    "blank name": (_top(name=" "), 'field "name": must be non-empty text'),
    "unknown top-level key": (_top(threshold=60), 'unknown top-level key "threshold"'),
}


def broken_file(world, mutate) -> dict:
    """The draft model's own export plus a behaviour rule, broken one way."""
    data = model_to_dict(world.draft)
    data["behavior_rules"] = [{"label": "Demo request", "kind": "demo_request", "points": 40}]
    mutate(data)
    return data


@pytest.mark.parametrize("mutate, message", FILE_FAULTS.values(), ids=FILE_FAULTS.keys())
def test_the_admin_import_refuses_a_bad_file_naming_the_fault_and_changes_nothing(
    world, client_for, mutate, message
):
    before = scoring_state()
    upload = SimpleUploadedFile(
        "model.json", json.dumps(broken_file(world, mutate)).encode(), "application/json"
    )

    response = client_for(world.marketer).post(
        "/admin/scoring/scoringmodel/import/", {"file": upload, "replace": "on"}
    )

    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert scoring_state() == before


@pytest.mark.parametrize("mutate, message", FILE_FAULTS.values(), ids=FILE_FAULTS.keys())
def test_the_import_command_refuses_a_bad_file_naming_the_fault_and_changes_nothing(
    world, tmp_path, mutate, message
):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(broken_file(world, mutate)), encoding="utf-8")
    before = scoring_state()

    with pytest.raises(CommandError) as refused:
        call_command("import_scoring_model", str(path), "--replace", "--activate")

    assert "nothing changed" in str(refused.value)
    assert message in str(refused.value)
    assert scoring_state() == before


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"name": "Draft model", ', "not valid JSON"),
        (b'{"name": "x", "mql_threshold": NaN}', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "a scoring model must be a JSON object"),
    ],
    ids=["truncated", "NaN", "not UTF-8", "not an object"],
)
def test_a_file_that_is_not_a_model_is_refused_everywhere(world, client_for, tmp_path, content, message):
    before = scoring_state()
    path = tmp_path / "model.json"
    path.write_bytes(content)

    with pytest.raises(CommandError, match=message):
        call_command("import_scoring_model", str(path), "--activate")
    response = client_for(world.marketer).post(
        "/admin/scoring/scoringmodel/import/", {"file": SimpleUploadedFile("m.json", content)}
    )

    assert response.status_code == 400 and message in html.unescape(response.content.decode())
    assert scoring_state() == before


def test_the_good_file_is_imported_so_the_refusals_above_are_the_faults(world, tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(broken_file(world, lambda data: None)), encoding="utf-8")
    call_command("import_scoring_model", str(path), "--replace")
    assert world.draft.behavior_rules.get().kind == InteractionKind.objects.get(slug="demo_request")
