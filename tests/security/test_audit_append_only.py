"""The audit trail is append-only (issue 7, item 11): no admin or API path edits or deletes a
Transition, whoever tries (a superuser included), and the model refuses it too."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from handoff import services
from handoff.models import Transition
from leads.models import Lead
from tests.security.conftest import TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(world):
    """A short history: sdr accepted their MQL, then rejected it with a note."""
    services.handoff_accept(handoff_id=world.mql.pk, actor=world.sdr)
    services.handoff_reject(handoff_id=world.mql.pk, actor=world.sdr, reason=world.reason, note="Call in Q3")
    assert Transition.objects.count() == 2
    return world


def rows():
    return list(Transition.objects.order_by("pk").values())


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "root-password-93kd")


# --- the model -------------------------------------------------------------------------------------


def test_saving_an_existing_transition_raises(trail):
    transition = Transition.objects.first()
    transition.note = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        transition.save()
    assert Transition.objects.get(pk=transition.pk).note == ""


def test_deleting_a_transition_raises(trail):
    before = rows()
    with pytest.raises(ValueError, match="append-only"):
        Transition.objects.first().delete()
    assert rows() == before


# --- the admin -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["superuser", "marketer", "manager"])
def test_no_admin_view_adds_changes_or_deletes_a_transition(trail, request, who):
    client = Client()
    client.force_login(request.getfixturevalue(who) if who == "superuser" else getattr(trail, who))
    t = Transition.objects.first()
    base = "/admin/handoff/transition/"
    before = rows()

    answers = {
        "add (GET)": client.get(f"{base}add/").status_code,
        "add (POST)": client.post(
            f"{base}add/", {"lead": t.lead_id, "from_stage": "lead", "to_stage": "won", "score": 1}
        ).status_code,
        "change (POST)": client.post(
            f"{base}{t.pk}/change/", {"note": "rewritten", "to_stage": "won"}
        ).status_code,
        "delete (GET)": client.get(f"{base}{t.pk}/delete/").status_code,
        "delete (POST)": client.post(f"{base}{t.pk}/delete/", {"post": "yes"}).status_code,
    }

    assert answers == dict.fromkeys(answers, 403)
    assert client.get(f"{base}{t.pk}/change/").status_code == 200  # it can be read
    assert rows() == before


@pytest.mark.parametrize("who", ["superuser", "marketer", "manager"])
def test_the_bulk_delete_action_is_not_offered_for_transitions(trail, request, who):
    client = Client()
    client.force_login(request.getfixturevalue(who) if who == "superuser" else getattr(trail, who))
    before = rows()

    page = client.get("/admin/handoff/transition/").content.decode()
    response = client.post(
        "/admin/handoff/transition/",
        {
            "action": "delete_selected",
            "post": "yes",
            "_selected_action": [r["id"] for r in before],
        },
    )

    assert 'value="delete_selected"' not in page
    assert response.status_code in (200, 302)
    assert rows() == before


def test_the_handoff_admin_with_its_stage_history_is_read_only(trail, superuser):
    client = Client()
    client.force_login(superuser)
    t = Transition.objects.first()
    response = client.post(
        f"/admin/handoff/handoff/{trail.mql.pk}/change/",
        {
            "transitions-TOTAL_FORMS": "1",
            "transitions-INITIAL_FORMS": "1",
            "transitions-0-id": t.pk,
            "transitions-0-note": "rewritten",
            "transitions-0-DELETE": "on",
        },
    )
    assert response.status_code == 403
    assert client.post(f"/admin/handoff/handoff/{trail.mql.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Transition.objects.count() == 2


def test_editing_a_lead_leaves_its_stage_history_alone(trail, client_for):
    """The lead's admin page shows the history inline; a marketer may save the lead, but the posted
    history rows (edited, or marked for deletion) are ignored."""
    lead = Lead.objects.get(pk=trail.mql.lead_id)
    before = rows()
    data = {
        "email": lead.email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "job_title": "CMO",
        "company": lead.company,
        "country": lead.country,
        "source": lead.source,
        "company_size": "250",
        "interactions-TOTAL_FORMS": "0",
        "interactions-INITIAL_FORMS": "0",
        "transitions-TOTAL_FORMS": str(len(before)),
        "transitions-INITIAL_FORMS": str(len(before)),
    }
    for i, row in enumerate(before):
        data.update(
            {
                f"transitions-{i}-id": row["id"],
                f"transitions-{i}-lead": lead.pk,
                f"transitions-{i}-note": "rewritten",
                f"transitions-{i}-to_stage": "won",
                f"transitions-{i}-DELETE": "on",
            }
        )

    response = client_for(trail.marketer).post(f"/admin/leads/lead/{lead.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Lead.objects.get(pk=lead.pk).job_title == "CMO"
    assert rows() == before


def test_a_user_with_a_history_cannot_be_deleted(trail, superuser):
    client = Client()
    client.force_login(superuser)
    before = rows()
    response = client.post(f"/admin/auth/user/{trail.sdr.pk}/delete/", {"post": "yes"})
    assert response.status_code == 200 and b"Cannot delete user" in response.content
    assert rows() == before


@pytest.mark.parametrize("who", ["marketer", "superuser"])
@pytest.mark.parametrize("how", ["delete view", "bulk delete action"])
def test_deleting_a_lead_with_a_history_is_refused_by_the_admin(trail, request, who, how):
    """Transition.lead cascades, so deleting a lead would take its history with it; the admin refuses,
    because nobody (a superuser included) holds delete permission on the read-only Transition admin."""
    client = Client()
    client.force_login(request.getfixturevalue(who) if who == "superuser" else getattr(trail, who))
    lead_id = trail.mql.lead_id
    before = rows()
    if how == "delete view":
        response = client.post(f"/admin/leads/lead/{lead_id}/delete/", {"post": "yes"})
    else:
        response = client.post(
            "/admin/leads/lead/", {"action": "delete_selected", "post": "yes", "_selected_action": [lead_id]}
        )
    assert response.status_code in (200, 403)
    assert Lead.objects.filter(pk=lead_id).exists()
    assert rows() == before


# --- the API ---------------------------------------------------------------------------------------


def test_the_api_has_no_way_to_touch_transitions(trail, client):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    lead = Lead.objects.get(pk=trail.mql.lead_id)
    before = rows()

    document = json.dumps(client.get("/api/v1/openapi.json", **auth).json()).lower()
    answers = [
        client.delete(f"/api/v1/leads/{lead.email}", **auth).status_code,
        client.put(f"/api/v1/leads/{lead.email}", "{}", content_type="application/json", **auth).status_code,
        client.patch(
            f"/api/v1/leads/{lead.email}", "{}", content_type="application/json", **auth
        ).status_code,
        client.post("/api/v1/transitions", "{}", content_type="application/json", **auth).status_code,
        client.delete("/api/v1/leads", **auth).status_code,
    ]
    # Changing the lead's stage through the upsert is refused; changing its other fields is fine and
    # leaves the history alone.
    stage = client.post(
        "/api/v1/leads",
        json.dumps({"email": lead.email, "stage": "won"}),
        content_type="application/json",
        **auth,
    )
    upsert = client.post(
        "/api/v1/leads",
        json.dumps({"email": lead.email, "job_title": "CEO"}),
        content_type="application/json",
        **auth,
    )

    assert "transition" not in document
    assert answers == [405, 405, 405, 404, 405]
    assert stage.status_code == 400 and "read-only" in stage.content.decode()
    assert upsert.status_code == 200
    assert rows() == before
