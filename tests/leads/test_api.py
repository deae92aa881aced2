"""The JSON API (/api/v1/), over HTTP with the Django test client."""

import json
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads.models import ApiToken, Interaction, Lead
from scoring import services as scoring_services
from scoring import tasks
from scoring.models import RescoreRequest
from tests.leads.factories import (
    ApiTokenFactory,
    CampaignFactory,
    InteractionFactory,
    InteractionKindFactory,
    LeadFactory,
    UserFactory,
)

TOKEN = "test-api-token-0123456789"
INTERACTIONS = "/api/v1/interactions"
LEADS = "/api/v1/leads"
MISSING = object()


@pytest.fixture
def token(db):
    return ApiTokenFactory(raw=TOKEN, name="marketing tool")


def post(client, path, body, *, token=TOKEN, **extra):
    """POST `body` (dict/list → JSON; str/bytes as is) with a bearer token (None: no header)."""
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.post(path, data, content_type="application/json", **extra)


def get(client, path, *, token=TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.get(path, **headers)


def item(n=1, **fields):
    """A valid interaction; pass field=MISSING to leave a field out."""
    data = {
        "external_id": f"evt-{n}",
        "email": f"person{n}@example.com",
        "kind": "page_view",
        "occurred_at": "2024-05-01T10:00:00+02:00",
        "properties": {"path": "/pricing"},
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not MISSING}


def assert_nothing_stored():
    assert Interaction.objects.count() == 0
    assert Lead.objects.count() == 0


# --- auth -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "header",
    [None, "Bearer not-the-token", "Basic dXNlcjpwYXNz", "Bearer", f"Token {TOKEN}"],
    ids=["missing", "wrong", "basic", "empty", "other-scheme"],
)
def test_it_refuses_a_request_without_a_valid_token(client, token, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(INTERACTIONS, item(), content_type="application/json", **extra)
    assert response.status_code == 401
    assert "token" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_nothing_stored()


def test_it_refuses_a_revoked_token(client, token):
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    response = post(client, INTERACTIONS, item())
    assert response.status_code == 401
    assert_nothing_stored()


def test_a_signed_in_session_is_not_enough(client, token, marketer):
    client.force_login(marketer)
    response = post(client, INTERACTIONS, item(), token=None)
    assert response.status_code == 401


def test_a_token_request_without_a_session_is_not_redirected_to_login(token):
    response = post(Client(), INTERACTIONS, item())
    assert response.status_code == 202  # not a 302 to /login/


def test_it_needs_no_csrf_token(token):
    response = post(Client(enforce_csrf_checks=True), INTERACTIONS, item())
    assert response.status_code == 202


def test_it_records_token_use_at_most_once_a_minute(client, token):
    assert post(client, INTERACTIONS, item(1)).status_code == 202
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None

    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    assert post(client, INTERACTIONS, item(2)).status_code == 202
    token.refresh_from_db()
    assert token.last_used_at == recent

    stale = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    assert post(client, INTERACTIONS, item(3)).status_code == 202
    token.refresh_from_db()
    assert token.last_used_at > stale + timedelta(minutes=1)


# --- storing interactions ---------------------------------------------------------------------

def test_it_accepts_a_single_interaction(client, token):
    response = post(client, INTERACTIONS, item(1, properties={"path": "/pricing", "n": [1, 2]}))

    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    stored = Interaction.objects.select_related("lead", "kind").get()
    assert stored.external_id == "evt-1"
    assert stored.kind.slug == "page_view"
    assert stored.lead.email == "person1@example.com"
    assert stored.occurred_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert stored.properties == {"path": "/pricing", "n": [1, 2]}
    assert stored.received_at is not None


def test_properties_are_stored_as_a_json_object(client, token):
    post(client, INTERACTIONS, item(1, properties={"asset_type": "whitepaper", "size": 3}))

    assert Interaction.objects.filter(properties__asset_type="whitepaper", properties__size=3).count() == 1


@pytest.mark.parametrize("properties", [MISSING, None, {}], ids=["missing", "null", "empty"])
def test_properties_default_to_an_empty_object(client, token, properties):
    assert post(client, INTERACTIONS, item(1, properties=properties)).status_code == 202
    assert Interaction.objects.get().properties == {}


def test_it_counts_new_and_repeated_ids_of_a_batch_exactly(client, token):
    InteractionFactory(external_id="evt-1", lead=LeadFactory(email="person1@example.com"))
    batch = [
        item(1),  # already stored
        item(2, properties={"first": True}),
        item(3),
        item(2, properties={"first": False}),  # repeated within the batch
        item(3),  # again
    ]

    response = post(client, INTERACTIONS, {"interactions": batch})

    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "duplicates": 3}
    assert sorted(Interaction.objects.values_list("external_id", flat=True)) == ["evt-1", "evt-2", "evt-3"]
    assert Interaction.objects.get(external_id="evt-2").properties == {"first": True}


def test_posting_the_same_batch_twice_stores_it_once(client, token):
    batch = {"interactions": [item(n) for n in range(5)]}
    assert post(client, INTERACTIONS, batch).json() == {"accepted": 5, "duplicates": 0}

    response = post(client, INTERACTIONS, batch)

    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "duplicates": 5}
    assert Interaction.objects.count() == 5
    assert Lead.objects.count() == 5


def test_a_duplicate_with_another_email_creates_no_lead(client, token):
    post(client, INTERACTIONS, item(1, email="first@example.com"))

    response = post(client, INTERACTIONS, item(1, email="someone-else@example.com"))

    assert response.json() == {"accepted": 0, "duplicates": 1}
    assert list(Lead.objects.values_list("email", flat=True)) == ["first@example.com"]


def test_an_unknown_email_creates_the_lead_with_the_lead_fields(client, token):
    campaign = CampaignFactory(name="Spring webinar")
    lead_fields = {
        "first_name": "Ann", "last_name": "Lee", "job_title": "VP Marketing", "seniority": "VP",
        "company": "Acme", "industry": "Software", "company_size": 250, "annual_revenue": 1250000.5,
        "country": "de", "source": "event", "campaign": "Spring webinar",
    }

    response = post(client, INTERACTIONS, item(1, email=" Ann.Lee@Example.com ", lead=lead_fields))

    assert response.status_code == 202
    lead = Lead.objects.get()
    assert lead.email == "Ann.Lee@Example.com"
    assert (lead.first_name, lead.last_name, lead.job_title) == ("Ann", "Lee", "VP Marketing")
    assert (lead.seniority, lead.company, lead.industry) == ("vp", "Acme", "Software")
    assert lead.company_size == 250
    assert str(lead.annual_revenue) == "1250000.50"
    assert (lead.country, lead.source, lead.campaign) == ("DE", "event", campaign)
    assert (lead.stage, lead.score, lead.owner) == ("lead", 0, None)
    assert lead.interactions.count() == 1


def test_a_new_lead_without_lead_fields_gets_the_defaults(client, token):
    post(client, INTERACTIONS, item(1))

    lead = Lead.objects.get()
    assert (lead.email, lead.first_name, lead.country, lead.source, lead.campaign) == (
        "person1@example.com", "", "", "inbound", None,
    )


def test_an_existing_email_in_another_case_attaches_to_the_existing_lead(client, token):
    existing = LeadFactory(email="Ann@Example.com", company="Acme")

    response = post(client, INTERACTIONS, item(1, email="ANN@example.COM", lead={"company": "Other"}))

    assert response.status_code == 202
    assert Lead.objects.count() == 1
    assert Interaction.objects.get().lead == existing
    existing.refresh_from_db()
    assert existing.company == "Acme"  # lead fields are used only when the lead is created


def test_two_spellings_of_a_new_email_in_one_batch_make_one_lead(client, token):
    batch = [item(1, email="bob@example.com"), item(2, email="BOB@Example.com", lead={"company": "Bobco"})]

    response = post(client, INTERACTIONS, {"interactions": batch})

    assert response.json() == {"accepted": 2, "duplicates": 0}
    lead = Lead.objects.get()
    assert lead.email == "bob@example.com"
    assert lead.company == "Bobco"
    assert lead.interactions.count() == 2


def test_non_ascii_spellings_are_matched_as_the_database_lowercases_them(client, token):
    # SQLite's lower() is ASCII-only, PostgreSQL's follows the locale: either way, no crash, and
    # every interaction lands on a lead with its address.
    batch = [item(1, email="ann@BÜCHER.de"), item(2, email="ann@bücher.de"), item(3, email="ANN@bücher.de")]

    response = post(client, INTERACTIONS, {"interactions": batch})

    assert response.json() == {"accepted": 3, "duplicates": 0}
    for stored in Interaction.objects.select_related("lead"):
        sent = next(i["email"] for i in batch if i["external_id"] == stored.external_id)
        assert stored.lead.email.lower() == sent.lower() or stored.lead.email.casefold() == sent.casefold()
    assert 1 <= Lead.objects.count() <= 2


def test_a_batch_of_1000_is_accepted(client, token):
    batch = {"interactions": [item(n, email=f"p{n % 50}@example.com") for n in range(1000)]}

    response = post(client, INTERACTIONS, batch)

    assert response.json() == {"accepted": 1000, "duplicates": 0}
    assert Interaction.objects.count() == 1000
    assert Lead.objects.count() == 50


# --- rescoring --------------------------------------------------------------------------------

@pytest.fixture
def rescore_requests(monkeypatch):
    """Record calls to scoring.services.leads_request_rescore (and still make them)."""
    calls = []
    real = scoring_services.leads_request_rescore

    def spy(*, lead_ids):
        calls.append(list(lead_ids))
        return real(lead_ids=lead_ids)

    monkeypatch.setattr(scoring_services, "leads_request_rescore", spy)
    return calls


def test_the_leads_of_accepted_interactions_are_flagged_for_rescoring(client, token, rescore_requests):
    known = LeadFactory(email="known@example.com")
    only_duplicates = LeadFactory(email="dup@example.com")
    InteractionFactory(external_id="old", lead=only_duplicates)
    batch = [item(1, email="known@example.com"), item(2, email="new@example.com"),
             item(3, email="dup@example.com", external_id="old")]

    post(client, INTERACTIONS, {"interactions": batch})

    new = Lead.objects.get(email="new@example.com")
    known.refresh_from_db()
    only_duplicates.refresh_from_db()
    assert known.rescore_requests.exists()
    assert new.rescore_requests.exists()
    assert not only_duplicates.rescore_requests.exists()
    assert rescore_requests == [sorted([known.pk, new.pk])]


def test_a_request_of_only_duplicates_requests_no_rescore(client, token, rescore_requests):
    post(client, INTERACTIONS, item(1))
    rescore_requests.clear()

    post(client, INTERACTIONS, item(1))

    assert rescore_requests == []


def test_nothing_is_stored_when_the_transaction_fails(token, monkeypatch):
    def broken(*, lead_ids):
        raise RuntimeError("boom")

    monkeypatch.setattr(scoring_services, "leads_request_rescore", broken)
    response = post(Client(raise_request_exception=False), INTERACTIONS, item(1))

    assert response.status_code == 500
    assert_nothing_stored()


# --- invalid input ----------------------------------------------------------------------------

def _future():
    return (timezone.now() + timedelta(minutes=10)).isoformat()


INVALID_ITEMS = {
    "missing external_id": ({"external_id": MISSING}, "external_id"),
    "blank external_id": ({"external_id": "  "}, "external_id"),
    "numeric external_id": ({"external_id": 12}, "external_id"),
    "long external_id": ({"external_id": "x" * 201}, "external_id"),
    "missing email": ({"email": MISSING}, "email"),
    "bad email": ({"email": "not-an-email"}, "email"),
    "unknown kind": ({"kind": "telepathy"}, "kind"),
    "missing kind": ({"kind": MISSING}, "kind"),
    "naive occurred_at": ({"occurred_at": "2024-05-01T10:00:00"}, "occurred_at"),
    "date-only occurred_at": ({"occurred_at": "2024-05-01"}, "occurred_at"),
    "unix occurred_at": ({"occurred_at": 1714550400}, "occurred_at"),
    "garbage occurred_at": ({"occurred_at": "yesterday"}, "occurred_at"),
    "future occurred_at": ({"occurred_at": _future}, "occurred_at"),
    "list properties": ({"properties": [1, 2]}, "properties"),
    "string properties": ({"properties": "a=b"}, "properties"),
    "lead not an object": ({"lead": "Ann"}, "lead"),
    "invalid lead.country": ({"lead": {"country": "Germany"}}, "lead.country"),
    "digits lead.country": ({"lead": {"country": "D1"}}, "lead.country"),
    "unknown lead.seniority": ({"lead": {"seniority": "intern"}}, "lead.seniority"),
    "unknown lead.source": ({"lead": {"source": "tv"}}, "lead.source"),
    "long lead.first_name": ({"lead": {"first_name": "A" * 101}}, "lead.first_name"),
    "negative lead.company_size": ({"lead": {"company_size": -1}}, "lead.company_size"),
    "fractional lead.company_size": ({"lead": {"company_size": 2.5}}, "lead.company_size"),
    "huge lead.company_size": ({"lead": {"company_size": 10**12}}, "lead.company_size"),
    "lead.annual_revenue with 3 decimals": ({"lead": {"annual_revenue": "1.234"}}, "lead.annual_revenue"),
    "unknown lead.campaign": ({"lead": {"campaign": "No such campaign"}}, "lead.campaign"),
    "read-only lead.stage": ({"lead": {"stage": "sql"}}, "lead.stage"),
    "unknown field": ({"colour": "red"}, "colour"),
    "NUL in properties": ({"properties": {"note": "a\u0000b"}}, "properties.note"),
    "lone surrogate in email": ({"email": "a\ud800@example.com"}, "email"),
}


@pytest.mark.parametrize("fields, field", INVALID_ITEMS.values(), ids=INVALID_ITEMS.keys())
def test_an_invalid_item_is_refused_and_nothing_is_stored(client, token, fields, field):
    fields = {key: value() if callable(value) else value for key, value in fields.items()}
    batch = {"interactions": [item(1), item(2, **fields)]}

    response = post(client, INTERACTIONS, batch)

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert {"index": 1, "field": field} in [{"index": e["index"], "field": e["field"]} for e in errors]
    assert all(e["message"] for e in errors)
    assert_nothing_stored()


def test_a_future_occurred_at_says_so(client, token):
    response = post(client, INTERACTIONS, item(1, occurred_at=_future()))

    assert response.json() == {"errors": [
        {"index": 0, "field": "occurred_at", "message": "occurred_at is in the future"}
    ]}


def test_a_slightly_future_occurred_at_is_tolerated(client, token):
    soon = (timezone.now() + timedelta(minutes=4)).isoformat()
    assert post(client, INTERACTIONS, item(1, occurred_at=soon)).status_code == 202


def test_interactions_dated_ahead_have_their_leads_rescored_again_when_the_latest_is_due(
    client, token, monkeypatch, django_capture_on_commit_callbacks
):
    scheduled = []
    monkeypatch.setattr(tasks.rescore_leads, "apply_async", lambda args, eta=None: scheduled.append((args, eta)))
    now = timezone.now()
    batch = [
        item(1, occurred_at=(now + timedelta(minutes=2)).isoformat()),
        item(2, occurred_at=(now + timedelta(minutes=3)).isoformat()),
        item(3),
    ]

    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, INTERACTIONS, {"interactions": batch}).status_code == 202

    people = ["person1@example.com", "person2@example.com"]
    ahead = sorted(Lead.objects.filter(email__in=people).values_list("pk", flat=True))
    due = now + timedelta(minutes=3)
    # The immediate rescore of all three leads, then one for when the later interactions are due.
    every = sorted(Lead.objects.values_list("pk", flat=True))
    assert scheduled == [((every,), None), ((ahead,), due + timedelta(seconds=1))]
    later = RescoreRequest.objects.filter(requested_at__gt=now + timedelta(minutes=1))
    later = later.values_list("lead_id", "requested_at")
    assert sorted(later) == [(pk, due) for pk in ahead]


def test_it_lists_every_problem_of_every_item(client, token):
    batch = [
        item(0),
        item(1, email="nope", kind="telepathy"),
        "not an object",
        item(3, external_id=MISSING, occurred_at="2024-05-01T10:00:00", lead={"campaign": "Ghost"}),
    ]

    response = post(client, INTERACTIONS, {"interactions": batch})

    assert response.status_code == 400
    found = {(e["index"], e["field"]) for e in response.json()["errors"]}
    assert found == {
        (1, "email"), (1, "kind"), (2, ""), (3, "external_id"), (3, "occurred_at"), (3, "lead.campaign"),
    }
    assert_nothing_stored()


def test_more_than_1000_items_are_refused(client, token):
    response = post(client, INTERACTIONS, {"interactions": [item(n) for n in range(1001)]})

    assert response.status_code == 400
    [problem] = response.json()["errors"]
    assert (problem["index"], problem["field"]) == (None, "interactions")
    assert "at most 1000" in problem["message"]
    assert_nothing_stored()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"interactions": []}, "interactions"),
        ({"interactions": {"external_id": "x"}}, "interactions"),
        ({"interactions": None}, "interactions"),
        ({"interactions": [item(1)], "extra": 1}, "extra"),
    ],
    ids=["empty", "object", "null", "extra key"],
)
def test_a_malformed_batch_is_refused(client, token, body, field):
    response = post(client, INTERACTIONS, body)

    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(None, field)]
    assert_nothing_stored()


@pytest.mark.parametrize(
    "body",
    [
        b"{", b"{'single': 'quotes'}", b"", b"   ", b"[1, 2", b"\xff\xfe\x00{", b"{\"a\": \"\xc3\x28\"}",
        b"[]", b"\"text\"", b"42", b"null", b"true",
        b'{"external_id": NaN}', b'{"properties": {"x": 1e999}}', b'{"properties": {"x": Infinity}}',
        b"[" * 100_000 + b"]" * 100_000, b'{"n": 1' + b"0" * 5000 + b"}",
    ],
    ids=[
        "truncated", "single quotes", "empty", "blank", "unclosed list", "utf-16", "bad utf-8",
        "list", "string", "number", "null", "boolean",
        "NaN", "overflowing float", "Infinity", "deeply nested", "huge integer",
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(client, token, body):
    response = post(client, INTERACTIONS, body)

    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["index"] is None
    assert_nothing_stored()


def test_a_chunked_body_without_content_length_is_refused_with_a_reason(client, token):
    response = post(client, INTERACTIONS, b"", HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 400
    assert "Content-Length" in response.json()["errors"][0]["message"]


def test_a_utf8_body_with_a_byte_order_mark_is_accepted(client, token):
    response = post(client, INTERACTIONS, b"\xef\xbb\xbf" + json.dumps(item(1)).encode())
    assert response.status_code == 202


def test_an_oversized_interaction_is_refused_with_413(client, token):
    batch = [item(0), item(1, properties={"blob": "x" * 33_000})]

    response = post(client, INTERACTIONS, {"interactions": batch})

    assert response.status_code == 413
    assert response.json() == {"errors": [
        {"index": 1, "field": "", "message": "interaction is larger than 32 KB"}
    ]}
    assert_nothing_stored()


def test_an_interaction_just_under_32_kb_is_accepted(client, token):
    body = item(1, properties={"blob": ""})
    body["properties"]["blob"] = "x" * (32 * 1024 - len(json.dumps(body, separators=(",", ":"))))
    assert len(json.dumps(body, separators=(",", ":"))) == 32 * 1024

    assert post(client, INTERACTIONS, body).status_code == 202


def test_an_oversized_body_is_refused_with_413(client, token):
    batch = [item(n, properties={"blob": "x" * 30_000}) for n in range(40)]  # ~1.2 MB

    response = post(client, INTERACTIONS, {"interactions": batch})

    assert response.status_code == 413
    assert response.json()["errors"][0]["message"] == "request body is larger than 1 MB"
    assert_nothing_stored()


def test_a_body_over_djangos_upload_limit_is_a_413_not_a_crash(client, token):
    response = post(client, INTERACTIONS, b"x" * (3 * 1024 * 1024))
    assert response.status_code == 413


# --- query counts -----------------------------------------------------------------------------

def _queries_for(client, batch) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = post(client, INTERACTIONS, {"interactions": batch})
    assert response.json()["accepted"] == len(batch)
    return len(queries)


def test_the_query_count_does_not_grow_with_the_batch(client, token):
    post(client, INTERACTIONS, item(0))  # the token's last use is recorded on the first request

    new_leads_10 = _queries_for(client, [item(n) for n in range(1, 11)])
    new_leads_200 = _queries_for(client, [item(n) for n in range(11, 211)])
    known_leads_200 = _queries_for(client, [item(n, email=f"person{n - 200}@example.com")
                                            for n in range(211, 411)])

    assert new_leads_10 == new_leads_200
    assert known_leads_200 <= new_leads_200
    # token, kinds, savepoint, stored ids, leads select + insert, interactions insert, rescore flag
    # (lock + update + savepoint), savepoint release.
    assert new_leads_200 <= 12


def test_a_batch_with_lead_campaigns_adds_one_query(client, token, django_assert_max_num_queries):
    post(client, INTERACTIONS, item(0))
    CampaignFactory(name="C1")
    CampaignFactory(name="C2")
    batch = [item(n, lead={"campaign": f"C{n % 2 + 1}"}) for n in range(1, 101)]
    with django_assert_max_num_queries(13):
        assert post(client, INTERACTIONS, {"interactions": batch}).status_code == 202
    assert Lead.objects.filter(campaign__name="C1").count() == 50


# --- lead upsert ------------------------------------------------------------------------------

def test_posting_a_new_lead_creates_it(client, token):
    CampaignFactory(name="Fair 2024")

    response = post(client, LEADS, {"email": "Ann@Example.com", "first_name": "Ann", "country": "fr",
                                    "company_size": 40, "campaign": "Fair 2024"})

    assert response.status_code == 201
    assert response.json() == {
        "email": "Ann@Example.com", "stage": "lead", "score": 0, "fit_score": 0, "engagement_score": 0,
        "breakdown": [], "scored_at": None, "owner": None,
    }
    lead = Lead.objects.get()
    assert (lead.first_name, lead.country, lead.company_size) == ("Ann", "FR", 40)
    assert lead.campaign.name == "Fair 2024"
    assert lead.rescore_requests.exists()  # its fit is scored


def test_posting_an_existing_email_updates_only_the_given_fields(client, token):
    lead = LeadFactory(email="ann@example.com", first_name="Ann", company="Acme", job_title="Analyst")

    response = post(client, LEADS, {"email": "ANN@example.com", "job_title": "VP Sales", "company": None})

    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.com"
    lead.refresh_from_db()
    assert (lead.first_name, lead.company, lead.job_title) == ("Ann", "", "VP Sales")
    assert lead.rescore_requests.exists()
    assert Lead.objects.count() == 1


def test_lead_upsert_never_writes_stage_score_or_owner(client, token, sdr):
    lead = LeadFactory(email="ann@example.com", stage="mql", score=70, owner=sdr)

    response = post(client, LEADS, {"email": "ann@example.com", "stage": "won", "score": 99, "owner": "x"})

    assert response.status_code == 400
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(fields) == {"stage", "score", "owner"}
    assert all("read-only" in message for message in fields.values())
    lead.refresh_from_db()
    assert (lead.stage, lead.score, lead.owner) == ("mql", 70, sdr)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"first_name": "Ann"}, "email"),
        ({"email": "nope"}, "email"),
        ({"email": "ann@example.com", "country": "FRA"}, "country"),
        ({"email": "ann@example.com", "seniority": "boss"}, "seniority"),
        ({"email": "ann@example.com", "source": None}, "source"),
        ({"email": "ann@example.com", "company_size": "many"}, "company_size"),
        ({"email": "ann@example.com", "campaign": "Ghost"}, "campaign"),
        ({"email": "ann@example.com", "company": "x" * 201}, "company"),
    ],
    ids=["no email", "bad email", "country", "seniority", "null source", "company_size", "campaign", "long"],
)
def test_an_invalid_lead_is_refused(client, token, body, field):
    response = post(client, LEADS, body)

    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, field)]
    assert Lead.objects.count() == 0


@pytest.mark.parametrize("body", [b"[]", b"{", b"\xff", b'"a"'])
def test_a_lead_body_that_is_not_a_json_object_is_refused(client, token, body):
    assert post(client, LEADS, body).status_code == 400


def test_lead_upsert_needs_a_token(client, token):
    assert post(client, LEADS, {"email": "ann@example.com"}, token="wrong").status_code == 401
    assert Lead.objects.count() == 0


# --- read-back --------------------------------------------------------------------------------

def test_reading_a_lead_returns_its_stage_score_breakdown_and_owner(client, token):
    owner = UserFactory(username="sam")
    breakdown = [{"rule_id": 1, "type": "fit", "label": "VP title", "points": 20.0}]
    scored_at = datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
    LeadFactory(email="Ann+news@Example.com", stage="sal", score=65, fit_score=20, engagement_score=45,
                score_breakdown=breakdown, scored_at=scored_at, owner=owner)

    response = get(client, f"{LEADS}/ann%2Bnews%40example.com")

    assert response.status_code == 200
    assert response.json() == {
        "email": "Ann+news@Example.com", "stage": "sal", "score": 65, "fit_score": 20,
        "engagement_score": 45, "breakdown": breakdown, "scored_at": "2024-05-02T09:30:00Z", "owner": "sam",
    }


def test_reading_a_lead_accepts_an_unencoded_email(client, token):
    LeadFactory(email="bob@example.com")
    response = get(client, f"{LEADS}/Bob@Example.com")
    assert response.status_code == 200
    assert response.json()["owner"] is None


@pytest.mark.parametrize("email", ["nobody%40example.com", "nobody", "a%2Fb%40example.com", "%00"])
def test_reading_an_unknown_lead_is_a_404(client, token, email):
    response = get(client, f"{LEADS}/{email}")
    assert response.status_code == 404
    assert response.json() == {"detail": "lead not found"}


def test_reading_a_lead_needs_a_token(client, token):
    LeadFactory(email="bob@example.com")
    assert get(client, f"{LEADS}/bob@example.com", token=None).status_code == 401


# --- documentation ----------------------------------------------------------------------------

def test_the_openapi_document_is_served_with_a_token(client, token):
    response = get(client, "/api/v1/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert {"/api/v1/interactions", "/api/v1/leads", "/api/v1/leads/{email}"} <= set(schema["paths"])
    assert {"InteractionIn", "InteractionBatchIn", "LeadUpsertIn", "LeadFields"} <= set(
        schema["components"]["schemas"]
    )
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"


def test_the_openapi_document_needs_a_token_or_a_session(client, token, marketer):
    assert get(client, "/api/v1/openapi.json", token=None).status_code == 401
    client.force_login(marketer)
    assert get(client, "/api/v1/openapi.json", token=None).status_code == 200


def test_the_docs_page_is_for_signed_in_users(client, marketer):
    response = client.get("/api/v1/docs")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")

    client.force_login(marketer)
    assert client.get("/api/v1/docs").status_code == 200


# --- concurrency (PostgreSQL: SQLite serialises writers anyway) --------------------------------

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent writers need PostgreSQL (SQLite runs one writer at a time)",
)


def _post_concurrently(bodies):
    """POST each body from its own thread and client, all at once; return the responses."""
    barrier = threading.Barrier(len(bodies))
    responses = [None] * len(bodies)

    def run(index, body):
        try:
            client = Client()
            barrier.wait(timeout=30)
            responses[index] = post(client, INTERACTIONS, body)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, body)) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


@postgresql_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_posts_of_the_same_external_id_store_it_once():
    InteractionKindFactory(slug="page_view")
    ApiTokenFactory(raw=TOKEN)

    responses = _post_concurrently([item(1, email="race@example.com")] * 20)

    assert [r.status_code for r in responses] == [202] * 20
    bodies = [r.json() for r in responses]
    assert sum(b["accepted"] for b in bodies) == 1
    assert sum(b["duplicates"] for b in bodies) == 19
    assert Interaction.objects.filter(external_id="evt-1").count() == 1
    assert Lead.objects.filter(email__iexact="race@example.com").count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_batches_creating_the_same_leads_make_each_lead_once():
    InteractionKindFactory(slug="page_view")
    ApiTokenFactory(raw=TOKEN)
    emails = [f"shared{n}@example.com" for n in range(20)]
    bodies = []
    for thread in range(10):
        order = random.Random(thread).sample(emails, len(emails))  # a different order per thread
        spell = str.upper if thread % 2 else str.lower
        batch = [item(f"{thread}-{n}", email=spell(email)) for n, email in enumerate(order)]
        bodies.append({"interactions": batch})

    responses = _post_concurrently(bodies)

    assert [r.status_code for r in responses] == [202] * 10
    assert sum(r.json()["accepted"] for r in responses) == 200
    assert Lead.objects.count() == 20
    assert Interaction.objects.count() == 200
