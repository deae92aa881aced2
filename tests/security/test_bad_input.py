"""Bad input gets a clear 4xx and stores nothing (issue 7, item 6).

tests/leads/test_api.py already covers most of it for POST /api/v1/interactions (see the table in
docs/reliability.md): oversized bodies and items (413), malformed JSON, bodies that are not an object,
wrong-typed and missing fields, a future occurred_at, unknown kinds and campaigns, NUL and lone
surrogates in properties and email, invalid UTF-8 and UTF-16 bodies. This file adds what was missing:
the same categories for POST /api/v1/leads and GET /api/v1/leads/{email}, text the database cannot
store in campaign names (two 500s Schemathesis found on PostgreSQL), booleans and text read as a
company size (also found by Schemathesis), Latin-1 bodies, and requests where every field has the
wrong type at once.
"""

import json

import pytest

from leads.models import Interaction, Lead
from tests.leads.factories import ApiTokenFactory, CampaignFactory

pytestmark = pytest.mark.django_db

TOKEN = "bad-input-token-0123456789"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def token(db):
    CampaignFactory(name="Spring webinar")
    return ApiTokenFactory(raw=TOKEN)


def post(client, path, body):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(path, data, content_type="application/json", **AUTH)


def item(**fields):
    return {
        "external_id": "evt-1",
        "email": "ann@example.com",
        "kind": "page_view",
        "occurred_at": "2024-05-01T10:00:00+02:00",
        **fields,
    }


def assert_refused(response, status=400, fields=None):
    """A clear refusal: the status, JSON errors each naming its field with a message, nothing stored."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json; charset=utf-8"
    errors = response.json()["errors"]
    assert errors and all(e["message"] for e in errors)
    if fields is not None:
        assert {e["field"] for e in errors} == set(fields), errors
    assert Interaction.objects.count() == 0
    assert Lead.objects.count() == 0
    return errors


# --- POST /api/v1/interactions: what tests/leads/test_api.py does not cover ---------------------


@pytest.mark.parametrize(
    "campaign",
    ["Spring\u0000webinar", "Spring \ud800webinar"],
    ids=["NUL", "lone surrogate"],
)
def test_unstorable_text_in_a_campaign_name_is_a_400_not_a_500(client, campaign):
    # Before the fix the campaign lookup ran with the raw name: PostgreSQL refused the query (500).
    assert_refused(
        post(client, "/api/v1/interactions", item(lead={"campaign": campaign})), fields=["lead.campaign"]
    )


def test_every_field_of_the_wrong_type_is_listed(client):
    body = {"external_id": 1, "email": [], "kind": {}, "occurred_at": True, "properties": "x", "lead": 5}
    assert_refused(
        post(client, "/api/v1/interactions", body),
        fields=["external_id", "email", "kind", "occurred_at", "properties", "lead"],
    )


def test_a_latin_1_body_is_refused_as_not_utf8(client):
    body = json.dumps(item(lead={"first_name": "Zoë"}), ensure_ascii=False).encode("latin-1")
    [problem] = assert_refused(post(client, "/api/v1/interactions", body))
    assert problem["index"] is None and "UTF-8" in problem["message"]


def test_a_boolean_or_text_company_size_is_refused_not_read_as_a_number(client):
    # Found by Schemathesis: pydantic's lax mode stored false as 0 (and "250" as 250).
    body = item(lead={"company_size": False})
    assert_refused(post(client, "/api/v1/interactions", body), fields=["lead.company_size"])


def test_a_kind_in_another_letter_case_is_unknown(client):
    [problem] = assert_refused(post(client, "/api/v1/interactions", item(kind="PAGE_VIEW")), fields=["kind"])
    assert "unknown interaction kind" in problem["message"]


def test_a_far_future_occurred_at_in_a_batch_refuses_the_whole_batch(client):
    batch = {"interactions": [item(), item(external_id="evt-2", occurred_at="2999-01-01T00:00:00Z")]}
    [problem] = assert_refused(post(client, "/api/v1/interactions", batch), fields=["occurred_at"])
    assert (problem["index"], problem["message"]) == (1, "occurred_at is in the future")


# --- POST /api/v1/leads ---------------------------------------------------------------------------


def test_a_lead_body_over_1_mb_is_a_413(client):
    body = {"email": "ann@example.com", "company": "x" * (1024 * 1024)}
    [problem] = assert_refused(post(client, "/api/v1/leads", body), status=413)
    assert problem["message"] == "request body is larger than 1 MB"


def test_a_lead_over_32_kb_is_a_413(client):
    [problem] = assert_refused(
        post(client, "/api/v1/leads", {"email": "ann@example.com", "notes": "x" * 40_000}), status=413
    )
    assert problem["message"] == "lead is larger than 32 KB"


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"email": "ann@example.com",}', b"\xff\xfe{\x00}\x00", b'{"email": NaN}', b""],
    ids=["truncated", "trailing comma", "utf-16", "NaN", "empty"],
)
def test_a_malformed_lead_body_is_a_400(client, body):
    [problem] = assert_refused(post(client, "/api/v1/leads", body))
    assert problem["index"] is None


def test_a_latin_1_lead_body_is_a_400(client):
    body = json.dumps({"email": "ann@example.com", "first_name": "Zoë"}, ensure_ascii=False).encode("latin-1")
    [problem] = assert_refused(post(client, "/api/v1/leads", body))
    assert "UTF-8" in problem["message"]


def test_every_lead_field_of_the_wrong_type_is_listed(client):
    body = {
        "email": 42,
        "first_name": 1,
        "job_title": [],
        "seniority": 3,
        "company": {},
        "company_size": "many",
        "annual_revenue": [1],
        "country": 49,
        "source": False,
        "campaign": 7,
    }
    errors = assert_refused(post(client, "/api/v1/leads", body))
    assert {e["field"] for e in errors} == set(body)


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"first_name": "A\u0000nn"}, "first_name"),
        ({"company": "Acme \udfff"}, "company"),
        ({"campaign": "Spring\u0000webinar"}, "campaign"),
        ({"campaign": "\ud800"}, "campaign"),
        ({"annual_revenue": 1e20}, "annual_revenue"),
        ({"company_size": 2**31}, "company_size"),
        ({"company_size": False}, "company_size"),
        ({"company_size": "250"}, "company_size"),
        ({"stage": "won"}, "stage"),
        ({"score": 100}, "score"),
        ({"owner": "sdr"}, "owner"),
    ],
    ids=[
        "NUL",
        "lone surrogate",
        "NUL campaign",
        "surrogate campaign",
        "huge revenue",
        "huge size",
        "boolean size",
        "size as text",
        "stage",
        "score",
        "owner",
    ],
)
def test_an_unstorable_or_read_only_lead_field_is_a_400(client, fields, field):
    errors = assert_refused(post(client, "/api/v1/leads", {"email": "ann@example.com", **fields}))
    assert {(e["index"], e["field"]) for e in errors} == {(0, field)}


def test_a_refused_update_changes_nothing(client):
    post(client, "/api/v1/leads", {"email": "ann@example.com", "company": "Acme"})
    response = post(
        client, "/api/v1/leads", {"email": "ann@example.com", "company": "Beta", "country": "Germany"}
    )
    assert response.status_code == 400
    assert Lead.objects.get().company == "Acme"


# --- GET /api/v1/leads/{email} -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["ann%0A%40example.com", "%0A", "%FF%FE%40example.com", "a" * 5000, "%ED%A0%80", "..%2F..%2Fadmin%2F"],
    ids=["newline", "only a newline", "not UTF-8", "very long", "encoded surrogate", "traversal"],
)
def test_a_strange_email_in_the_path_is_a_json_404(client, path):
    # Before the fix an email with a line break did not match the route: Django's HTML 404 page.
    response = client.get(f"/api/v1/leads/{path}", **AUTH)
    assert response.status_code == 404
    assert response.json() == {"detail": "lead not found"}
