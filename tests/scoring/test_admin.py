"""The scoring admin, as marketers and managers use it over HTTP."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from leads.models import InteractionKind
from scoring.forms import format_value, parse_value
from scoring.models import BehaviorRule, FitRule, RescoreRun, ScoringModel
from scoring.serialization import model_to_dict
from tests.leads.factories import LeadFactory
from tests.scoring.factories import (
    EXAMPLE_MODEL,
    FitRuleFactory,
    ScoringModelFactory,
    build_example_model,
    example_dict,
)

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"admin:scoring_scoringmodel_{name}", args=args)


def form_data(model=None, *, name="Spring", threshold="60", min_fit="", fit=(), behavior=()):
    """POST data for the add/change form: fit and behavior are lists of dicts of the inline's fields
    (an "id" key for an existing rule, "DELETE": "on" to delete it)."""
    data = {"name": name, "mql_threshold": threshold, "mql_min_fit": min_fit}
    for prefix, rows in (("fit_rules", fit), ("behavior_rules", behavior)):
        data[f"{prefix}-TOTAL_FORMS"] = str(len(rows))
        data[f"{prefix}-INITIAL_FORMS"] = str(sum(1 for r in rows if r.get("id")))
        data[f"{prefix}-MIN_NUM_FORMS"] = "0"
        data[f"{prefix}-MAX_NUM_FORMS"] = "1000"
        for i, row in enumerate(rows):
            data[f"{prefix}-{i}-model"] = str(model.pk) if model else ""
            for key, value in row.items():
                data[f"{prefix}-{i}-{key}"] = "" if value is None else str(value)
    return data


def fit_row(label="VP", field="job_title", operator="contains", value="vp", points="20", **extra):
    return {"label": label, "field": field, "operator": operator, "value": value, "points": points, **extra}


def behavior_row(label="Pricing", kind="pricing_page_view", points="10", **extra):
    row = {
        "label": label,
        "kind": InteractionKind.objects.get(slug=kind).pk,
        "points": points,
        "property_key": "",
        "property_operator": "",
        "property_value": "",
        "max_points": "",
        "half_life_days": "",
        "within_days": "",
    }
    row.update(extra)
    return row


def text(response) -> str:
    return response.content.decode()


# --- the value box -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, value",
    [
        ("vp", "vp"),
        ('"vp"', "vp"),
        ("200", 200),
        ("12.5", 12.5),
        ('"200"', "200"),
        ('["vp", "head"]', ["vp", "head"]),
        ("[500, 1000]", [500, 1000]),
        ("  ", None),
        ("gmail.com", "gmail.com"),
        ("head of sales", "head of sales"),
    ],
)
def test_the_value_box_reads_json_and_falls_back_to_plain_text(typed, value):
    assert parse_value(typed) == value
    if value is not None:
        assert parse_value(format_value(value)) == value


def test_the_value_box_shows_plain_strings_plainly():
    assert format_value("vp") == "vp"
    assert format_value("200") == '"200"'
    assert format_value(["vp", "head"]) == '["vp", "head"]'
    assert format_value(None) == ""


# --- list and add/change forms -----------------------------------------------------------------


def test_the_changelist_shows_models_with_rule_counts_and_import(client_for, marketer):
    build_example_model(status=ScoringModel.Status.ACTIVE, version=3)

    response = client_for(marketer).get(url("changelist"))

    assert response.status_code == 200
    assert "Default B2B" in text(response)
    assert 'class="field-fit_rule_count">3<' in text(response)
    assert 'class="field-behavior_rule_count">4<' in text(response)
    assert url("import") in text(response)


def test_a_marketer_adds_a_draft_with_rules_typed_plainly(client_for, marketer):
    data = form_data(
        fit=[
            fit_row(),
            fit_row(label="Titles", operator="contains_any", value='["head", "chief"]'),
            fit_row(label="Size", field="company_size", operator="between", value="[200, 1000]", points="15"),
            fit_row(label="Has industry", field="industry", operator="is_set", value=""),
        ],
        behavior=[
            behavior_row(max_points="30", half_life_days="14"),
            behavior_row(
                label="Whitepaper",
                kind="content_download",
                points="8",
                property_key="asset_type",
                property_operator="equals",
                property_value="whitepaper",
            ),
        ],
    )

    response = client_for(marketer).post(url("add"), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    model = ScoringModel.objects.get(name="Spring")
    assert model.status == ScoringModel.Status.DRAFT
    assert [r["value"] for r in model_to_dict(model)["fit_rules"]] == ["vp", ["head", "chief"], [200, 1000], None]
    assert model_to_dict(model)["behavior_rules"] == [
        {"label": "Pricing", "kind": "pricing_page_view", "points": 10, "max_points": 30, "half_life_days": 14},
        {
            "label": "Whitepaper",
            "kind": "content_download",
            "points": 8,
            "property": {"key": "asset_type", "operator": "equals", "value": "whitepaper"},
        },
    ]


def test_the_change_form_shows_stored_values_as_typed(client_for, marketer):
    model = build_example_model()

    response = client_for(marketer).get(url("change", model.pk))

    body = text(response)
    assert response.status_code == 200
    assert 'value="[&quot;vp&quot;, &quot;head&quot;, &quot;director&quot;, &quot;chief&quot;]"' in body
    assert 'value="200"' in body
    assert 'name="behavior_rules-1-property_key" value="asset_type"' in body
    assert 'name="behavior_rules-1-property_value" value="whitepaper"' in body
    for link in ("preview", "publish", "export", "duplicate"):
        assert url(link, model.pk) in body


@pytest.mark.parametrize(
    "row, message",
    [
        (
            fit_row(label="Senior", operator="gte", value="200"),
            "Senior: operator &quot;gte&quot; does not suit text field &quot;job_title&quot;",
        ),
        (
            fit_row(label="Mid-market+", field="company_size", operator="between", value="[500, 10]"),
            "Mid-market+: &quot;between&quot; needs [low, high] with low ≤ high; got [500, 10]",
        ),
        (
            fit_row(label="Titles", operator="contains_any", value="vp"),
            "Titles: &quot;contains_any&quot; needs a non-empty list; got &quot;vp&quot;",
        ),
        (
            fit_row(label="Size", field="company_size", operator="gte", value="big"),
            "Size: &quot;gte&quot; needs a number, got &quot;big&quot;",
        ),
    ],
)
def test_a_bad_fit_rule_shows_the_message_and_saves_nothing(client_for, marketer, row, message):
    model = ScoringModelFactory(name="Spring")
    kept = FitRuleFactory(model=model, label="Kept", value="vp")
    before = list(FitRule.objects.values_list("pk", "label", "operator", "value"))

    response = client_for(marketer).post(
        url("change", model.pk),
        form_data(model, threshold="70", fit=[fit_row(id=kept.pk, label="Renamed"), row]),
    )

    assert response.status_code == 200
    assert message in text(response)
    assert list(FitRule.objects.values_list("pk", "label", "operator", "value")) == before
    model.refresh_from_db()
    assert model.mql_threshold == 60


def test_a_bad_behaviour_rule_shows_the_message_and_saves_nothing(client_for, marketer):
    response = client_for(marketer).post(
        url("add"),
        form_data(
            behavior=[
                behavior_row(label="Capped", max_points="-5"),
                behavior_row(
                    label="Long reads",
                    kind="content_download",
                    property_key="minutes",
                    property_operator="gte",
                    property_value="long",
                ),
            ]
        ),
    )

    body = text(response)
    assert response.status_code == 200
    assert "Capped: max points must be positive" in body
    assert "Long reads: &quot;gte&quot; needs a number, got &quot;long&quot;" in body
    assert 'name="behavior_rules-1-property_value" value="long"' in body  # shown back as typed
    assert not ScoringModel.objects.exists()
    assert not BehaviorRule.objects.exists()


def test_duplicate_labels_are_refused(client_for, marketer):
    response = client_for(marketer).post(url("add"), form_data(fit=[fit_row(label="VP"), fit_row(label="vp")]))

    assert response.status_code == 200
    assert "labels must differ" in text(response)
    assert not ScoringModel.objects.exists()


def test_status_and_version_are_read_only(client_for, marketer):
    model = ScoringModelFactory(name="Spring")

    data = form_data(model, threshold="55")
    data.update(status="active", version="9")
    response = client_for(marketer).post(url("change", model.pk), data)

    assert response.status_code == 302
    model.refresh_from_db()
    assert (model.status, model.version, model.mql_threshold) == ("draft", 0, 55)


def test_editing_the_active_model_rescores_and_links_to_the_progress(client_for, marketer):
    model = ScoringModelFactory(name="Live", status=ScoringModel.Status.ACTIVE, version=2)
    rule = FitRuleFactory(model=model, label="VP", value="vp")
    client = client_for(marketer)

    response = client.post(
        url("change", model.pk),
        form_data(model, name="Live", fit=[fit_row(id=rule.pk, points="25")]),
        follow=True,
    )

    model.refresh_from_db()
    run = RescoreRun.objects.get()
    assert model.version == 3
    assert run.model == model
    progress = reverse("admin:scoring_rescorerun_progress", args=[run.pk])
    assert f'<a href="{progress}">See the rescore progress</a>' in text(response)


def rows_of(model):
    """The inline rows of a stored model, as the change form shows them."""
    fit = [
        fit_row(id=r.pk, label=r.label, field=r.field, operator=r.operator, value=format_value(r.value),
                points=r.points)
        for r in model.fit_rules.all()
    ]
    behavior = []
    for r in model.behavior_rules.select_related("kind"):
        prop = r.property or {}
        behavior.append(
            behavior_row(
                id=r.pk, label=r.label, kind=r.kind.slug, points=r.points,
                property_key=prop.get("key", ""), property_operator=prop.get("operator", ""),
                property_value=format_value(prop.get("value")),
                max_points=r.max_points, half_life_days=r.half_life_days, within_days=r.within_days,
            )
        )
    return {"fit": fit, "behavior": behavior}


def test_saving_the_active_model_unchanged_does_not_rescore(client_for, marketer):
    model = build_example_model(status=ScoringModel.Status.ACTIVE, version=2)

    response = client_for(marketer).post(url("change", model.pk), form_data(model, name=model.name, **rows_of(model)))

    assert response.status_code == 302
    assert not RescoreRun.objects.exists()
    model.refresh_from_db()
    assert model.version == 2
    assert model_to_dict(model) == EXAMPLE_MODEL


def test_deleting_a_rule_of_the_active_model_rescores(client_for, marketer):
    model = build_example_model(status=ScoringModel.Status.ACTIVE, version=2)
    rows = rows_of(model)
    rows["fit"][2]["DELETE"] = "on"

    client_for(marketer).post(url("change", model.pk), form_data(model, name=model.name, **rows))

    model.refresh_from_db()
    assert model.version == 3
    assert [r["label"] for r in model_to_dict(model)["fit_rules"]] == ["Decision-maker title", "Mid-market+"]
    assert RescoreRun.objects.get().model == model


def test_an_edit_rescores_only_what_it_changed(client_for, marketer):
    """The admin tells the run what the edit changed: fit rules → a refit, the threshold alone →
    promotions only, a behaviour rule → every lead in full; and says so to the marketer."""
    model = build_example_model(status=ScoringModel.Status.ACTIVE, version=2)
    client = client_for(marketer)

    def save(rows, **fields):
        response = client.post(url("change", model.pk), form_data(model, name=model.name, **rows, **fields), follow=True)
        return RescoreRun.objects.order_by("-pk").first(), text(response)

    rows = rows_of(model)
    rows["fit"][1]["points"] = "16"
    run, page = save(rows)
    assert run.scope == "fit" and "the fit of every lead is being rescored" in page

    run, page = save(rows_of(model), threshold="55")
    assert run.scope == "threshold" and "leads that now reach the threshold" in page

    rows = rows_of(model)
    rows["behavior"][0]["points"] = "11"
    run, page = save(rows, threshold="55")
    assert run.scope == "all" and "every lead is being rescored" in page
    assert ScoringModel.objects.get(pk=model.pk).version == 5


def test_renaming_the_active_model_does_not_rescore(client_for, marketer):
    model = ScoringModelFactory(name="Live", status=ScoringModel.Status.ACTIVE, version=2)

    response = client_for(marketer).post(url("change", model.pk), form_data(model, name="Live 2025"))

    assert response.status_code == 302
    assert not RescoreRun.objects.exists()
    model.refresh_from_db()
    assert (model.name, model.version) == ("Live 2025", 2)


def test_editing_a_draft_does_not_rescore(client_for, marketer):
    model = ScoringModelFactory(name="Draft")

    client_for(marketer).post(url("change", model.pk), form_data(model, name="Draft", threshold="10"))

    assert not RescoreRun.objects.exists()


def test_an_archived_model_is_read_only(client_for, marketer):
    model = ScoringModelFactory(name="Old", status=ScoringModel.Status.ARCHIVED)
    client = client_for(marketer)

    assert client.get(url("change", model.pk)).status_code == 200
    assert client.post(url("change", model.pk), form_data(model, name="Old", threshold="1")).status_code == 403


def test_the_active_model_cannot_be_deleted(client_for, marketer):
    model = ScoringModelFactory(name="Live", status=ScoringModel.Status.ACTIVE)

    response = client_for(marketer).post(url("delete", model.pk), {"post": "yes"})

    assert response.status_code == 403
    assert ScoringModel.objects.filter(pk=model.pk).exists()


# --- preview and publish -----------------------------------------------------------------------


@pytest.fixture
def leads():
    """Under the draft below: a scores 35 (new MQL), b stays 0, c (already SAL) scores 20."""
    return [
        LeadFactory(email="a@acme.example", job_title="VP Marketing", company_size=250),
        LeadFactory(email="b@acme.example", job_title="Engineer", company_size=50),
        LeadFactory(email="c@acme.example", job_title="VP Sales", company_size=50, stage="sal"),
    ]


@pytest.fixture
def draft():
    model = ScoringModelFactory(name="Draft", mql_threshold=30)
    FitRuleFactory(model=model, label="VP", field="job_title", operator="contains", value="vp", points=20)
    FitRuleFactory(model=model, label="Size", field="company_size", operator="gte", value=200, points=15)
    return model


def impact_numbers(body):
    return {k: int(v) for k, v in re.findall(r'data-impact="(\w+)">(-?\d+)<', body)}


def test_the_publish_confirmation_shows_the_impact_preview(client_for, marketer, leads, draft):
    ScoringModelFactory(name="Current", status=ScoringModel.Status.ACTIVE, version=4)

    response = client_for(marketer).get(url("publish", draft.pk))

    body = text(response)
    assert response.status_code == 200
    assert impact_numbers(body) == {"total": 3, "changed": 2, "new_mqls": 1}
    assert "<td>a@acme.example</td><td>0</td><td>35</td>" in body
    assert "Current</strong> (Current v4), which will be archived" in body
    assert 'value="Publish"' in body
    assert draft.status == "draft" and not RescoreRun.objects.exists()


def test_the_preview_page_works_for_drafts_and_for_managers(client_for, manager, leads, draft):
    response = client_for(manager).get(url("preview", draft.pk))

    assert response.status_code == 200
    assert impact_numbers(text(response)) == {"total": 3, "changed": 2, "new_mqls": 1}
    assert url("publish", draft.pk) not in text(response)  # a manager cannot publish


def test_publishing_makes_the_model_active_archives_the_previous_and_shows_progress(
    client_for, marketer, leads, draft
):
    previous = ScoringModelFactory(name="Current", status=ScoringModel.Status.ACTIVE, version=4)
    client = client_for(marketer)

    response = client.post(url("publish", draft.pk))

    run = RescoreRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:scoring_rescorerun_progress", args=[run.pk])
    draft.refresh_from_db()
    previous.refresh_from_db()
    assert (draft.status, draft.version, draft.published_by) == ("active", 1, marketer)
    assert draft.published_at is not None
    assert previous.status == "archived"
    assert run.model == draft

    page = client.get(response["Location"])
    body = text(page)
    assert page.status_code == 200
    assert '<meta http-equiv="refresh" content="2">' in body
    assert f"0 / {run.total} (0%)" in body or f"{run.done} / {run.total}" in body


def test_the_progress_page_stops_refreshing_when_done(client_for, marketer, draft):
    run = RescoreRun.objects.create(model=draft, reason="published Draft v1", status="done", total=10, done=10)

    body = text(client_for(marketer).get(reverse("admin:scoring_rescorerun_progress", args=[run.pk])))

    assert "http-equiv" not in body
    assert "10 / 10 (100%)" in body


def test_the_progress_of_a_run_over_a_large_table_says_its_total_is_an_estimate_until_done(
    client_for, marketer, draft
):
    """With 100,000 leads or more a run starts from the database's estimate of their number."""
    run = RescoreRun.objects.create(
        model=draft, reason="published Draft v1", status="running", total=150_000, done=30_000, changed=29_500
    )
    url = reverse("admin:scoring_rescorerun_progress", args=[run.pk])

    client = client_for(marketer)
    assert "30,000 / about 150,000 (20%)" in text(client.get(url))
    listed = text(client.get(reverse("admin:scoring_rescorerun_changelist")))
    assert "30,000/about 150,000 (20%)" in listed and "29,500" in listed

    RescoreRun.objects.filter(pk=run.pk).update(status="done", total=150_012, done=150_012)
    assert "150,012 / 150,012 (100%)" in text(client.get(url))


def test_the_rescore_list_is_readable_by_marketers(client_for, marketer, draft):
    RescoreRun.objects.create(model=draft, reason="published Draft v1")

    response = client_for(marketer).get(reverse("admin:scoring_rescorerun_changelist"))

    assert response.status_code == 200
    assert "published Draft v1" in text(response)
    assert client_for(marketer).get(reverse("admin:scoring_rescorerun_add")).status_code == 403


def test_publishing_the_active_model_again_does_nothing(client_for, marketer):
    model = ScoringModelFactory(name="Live", status=ScoringModel.Status.ACTIVE, version=2)

    response = client_for(marketer).post(url("publish", model.pk))

    assert response.status_code == 302
    model.refresh_from_db()
    assert model.version == 2 and not RescoreRun.objects.exists()


def test_the_publish_action_leads_to_the_confirmation(client_for, marketer, draft):
    response = client_for(marketer).post(
        url("changelist"), {"action": "publish_action", "_selected_action": [draft.pk]}
    )

    assert response.status_code == 302
    assert response["Location"] == url("publish", draft.pk)


def test_a_manager_cannot_publish(client_for, manager, draft):
    client = client_for(manager)

    assert client.get(url("publish", draft.pk)).status_code == 403
    assert client.post(url("publish", draft.pk)).status_code == 403
    draft.refresh_from_db()
    assert draft.status == "draft"
    assert not RescoreRun.objects.exists()
    page = text(client.get(url("change", draft.pk)))
    assert url("publish", draft.pk) not in page
    assert url("duplicate", draft.pk) not in page


def test_a_manager_sees_models_read_only(client_for, manager, draft):
    client = client_for(manager)

    assert client.get(url("changelist")).status_code == 200
    assert client.post(url("change", draft.pk), form_data(draft, name="Draft", threshold="1")).status_code == 403
    assert client.get(url("add")).status_code == 403


# --- export, import, duplicate -----------------------------------------------------------------


def test_export_downloads_the_json(client_for, manager):
    model = build_example_model(version=3)

    response = client_for(manager).get(url("export", model.pk))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="default-b2b-v3.json"'
    assert json.loads(response.content) == EXAMPLE_MODEL


def test_the_export_action_downloads_one_model(client_for, marketer):
    model = build_example_model()

    response = client_for(marketer).post(
        url("changelist"), {"action": "export_action", "_selected_action": [model.pk]}
    )

    assert json.loads(response.content) == EXAMPLE_MODEL


def upload(data, name="model.json"):
    content = data if isinstance(data, bytes) else json.dumps(data).encode()
    return SimpleUploadedFile(name, content, content_type="application/json")


def test_import_creates_a_draft_and_opens_it(client_for, marketer):
    response = client_for(marketer).post(url("import"), {"file": upload(example_dict())})

    model = ScoringModel.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("change", model.pk)
    assert model.status == "draft"
    assert model_to_dict(model) == EXAMPLE_MODEL


def test_the_import_page_refuses_a_bad_file_listing_every_problem(client_for, marketer):
    data = example_dict()
    data["fit_rules"][1].update(operator="between", value=[500, 10])
    data["behavior_rules"][0]["kind"] = "pricing_view"
    data["behavior_rules"][3]["max_points"] = -5

    response = client_for(marketer).post(url("import"), {"file": upload(data)})

    body = text(response)
    assert response.status_code == 400
    assert "not imported (3 problems); nothing changed" in body
    assert "fit_rules[1] &quot;Mid-market+&quot;: field &quot;value&quot;: &quot;between&quot; needs" in body
    assert "behavior_rules[0] &quot;Pricing page&quot;: field &quot;kind&quot;: unknown interaction kind" in body
    assert "behavior_rules[3] &quot;Unsubscribed&quot;: field &quot;max_points&quot;" in body
    assert not ScoringModel.objects.exists()


def test_the_import_page_refuses_invalid_json(client_for, marketer):
    response = client_for(marketer).post(url("import"), {"file": upload(b"{not json")})

    assert response.status_code == 400
    assert "not valid JSON" in text(response)
    assert not ScoringModel.objects.exists()


def test_the_import_page_refuses_a_taken_name_unless_replace(client_for, marketer):
    build_example_model()
    client = client_for(marketer)

    refused = client.post(url("import"), {"file": upload(example_dict(mql_threshold=80))})
    assert refused.status_code == 400
    assert "already exists" in text(refused)

    client.post(url("import"), {"file": upload(example_dict(mql_threshold=80)), "replace": "on"})
    assert ScoringModel.objects.get().mql_threshold == 80


def test_a_manager_cannot_import(client_for, manager):
    client = client_for(manager)

    assert client.get(url("import")).status_code == 403
    assert client.post(url("import"), {"file": upload(example_dict())}).status_code == 403
    assert not ScoringModel.objects.exists()
    assert url("import") not in text(client.get(url("changelist")))


def test_duplicate_as_draft_copies_the_active_model(client_for, marketer):
    source = build_example_model(status=ScoringModel.Status.ACTIVE, version=5)
    client = client_for(marketer)

    page = client.get(url("duplicate", source.pk))
    assert 'value="Default B2B (copy)"' in text(page)
    response = client.post(url("duplicate", source.pk), {"name": "Default B2B (copy)"})

    copy = ScoringModel.objects.get(name="Default B2B (copy)")
    assert response["Location"] == url("change", copy.pk)
    assert copy.status == "draft"
    assert model_to_dict(copy) == example_dict(name="Default B2B (copy)")
    source.refresh_from_db()
    assert (source.status, source.version) == ("active", 5)


def test_the_duplicate_action_names_copies_uniquely(client_for, marketer):
    source = build_example_model()
    client = client_for(marketer)

    for _ in range(2):
        client.post(url("changelist"), {"action": "duplicate_action", "_selected_action": [source.pk]})

    assert sorted(ScoringModel.objects.values_list("name", flat=True)) == [
        "Default B2B",
        "Default B2B (copy 2)",
        "Default B2B (copy)",
    ]


def test_a_manager_cannot_duplicate(client_for, manager):
    source = build_example_model()

    assert client_for(manager).post(url("duplicate", source.pk), {"name": "x"}).status_code == 403
    assert ScoringModel.objects.count() == 1
