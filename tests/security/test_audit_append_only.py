"""The audit trail is append-only (issue 7, item 11): no admin or API path edits or deletes a
Transition, whoever tries (a superuser included); the model and its queryset refuse it, deleting a
lead or handoff with history is refused rather than cascaded, and the database itself refuses UPDATE
(PostgreSQL and SQLite) and DELETE (PostgreSQL) for code that goes around the ORM."""

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.test import Client

from handoff import services
from handoff.models import Handoff, Transition, purge_transitions
from leads.models import Lead
from tests.conftest import skip_or_fail
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


def test_a_queryset_update_or_delete_raises(trail):
    before = rows()
    with pytest.raises(ValueError, match="append-only"):
        Transition.objects.update(note="rewritten")
    with pytest.raises(ValueError, match="append-only"):
        Transition.objects.filter(lead_id=trail.mql.lead_id).delete()
    with pytest.raises(ValueError, match="append-only"):
        Lead.objects.get(pk=trail.mql.lead_id).transitions.all().delete()
    assert rows() == before


@pytest.mark.parametrize("what", ["lead", "handoff"])
def test_deleting_a_lead_or_handoff_with_history_is_refused_not_cascaded(trail, what):
    before = rows()
    owner = Lead.objects.get(pk=trail.mql.lead_id) if what == "lead" else Handoff.objects.get(pk=trail.mql.pk)
    with pytest.raises(ProtectedError):
        owner.delete()
    with pytest.raises(ProtectedError):
        type(owner).objects.filter(pk=owner.pk).delete()
    assert rows() == before


# --- the database ------------------------------------------------------------------------------------


def _sql(statement, params=()):
    """Run raw SQL as code that bypasses the ORM would; a savepoint keeps the test's transaction usable
    after a refusal."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def test_the_database_refuses_an_update(trail):
    """PostgreSQL and SQLite: a trigger refuses UPDATE of any transition, whatever issues it."""
    before = rows()
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("UPDATE handoff_transition SET note = 'rewritten'")
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("UPDATE handoff_transition SET to_stage = 'won' WHERE id = %s", [before[0]["id"]])
    assert rows() == before


def test_the_database_refuses_a_delete_and_a_cascade(trail):
    """PostgreSQL: a trigger refuses DELETE, from a statement or from a database-level cascade attempt.
    (SQLite has no DELETE trigger: its test flush is a DELETE; see handoff/migrations/0007.)"""
    if connection.vendor != "postgresql":
        skip_or_fail("SQLite keeps deletes out above the database only (its test flush is DELETE FROM)")
    before = rows()
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("DELETE FROM handoff_transition")
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("DELETE FROM handoff_transition WHERE id = %s", [before[0]["id"]])
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Transition.objects.all()._raw_delete(connection.alias)  # what a bulk ORM delete would run
    assert rows() == before


def test_the_purge_setting_lets_only_a_delete_through(trail):
    """The escape hatch of maintenance scripts (seed_demo --force, the benchmark's restore): a
    transaction that sets accord.audit_purge may delete transitions, never change one."""
    if connection.vendor != "postgresql":
        skip_or_fail("the purge setting is PostgreSQL's (SQLite has no DELETE trigger)")
    first, second = (r["id"] for r in rows())
    _sql("SET LOCAL accord.audit_purge = 'on'")
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("UPDATE handoff_transition SET note = 'rewritten' WHERE id = %s", [second])
    assert _sql("DELETE FROM handoff_transition WHERE id = %s", [first]) == 1
    _sql("SET LOCAL accord.audit_purge = 'off'")
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("DELETE FROM handoff_transition WHERE id = %s", [second])
    assert [r["id"] for r in rows()] == [second]


def test_purging_the_trail_switches_the_setting_off_again(trail):
    assert purge_transitions() == 2
    assert not Transition.objects.exists()
    services.handoff_qualify(
        handoff_id=trail.sal.pk, actor=trail.sdr, budget="b", authority="a", need="n", timing="t"
    )
    if connection.vendor == "postgresql":
        with pytest.raises(IntegrityError, match="append-only"):
            _sql("DELETE FROM handoff_transition")
    assert Transition.objects.count() == 1


def test_seed_demo_force_still_replaces_data_with_a_history(trail):
    """The one sanctioned wipe goes through every guard (purge_transitions, then no history left to
    protect the leads and handoffs)."""
    old_lead = trail.mql.lead_id

    call_command("seed_demo", "--force", "--leads", "40", stdout=io.StringIO())

    assert not Lead.objects.filter(pk=old_lead).exists()
    assert Lead.objects.count() == 40
    assert Transition.objects.exists(), "the demo's own history, written through the state machine"


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
    """The admin refuses to delete a lead with history ("Cannot delete lead"), whoever asks (a
    superuser included): its handoffs and transitions may not be deleted by anyone, and Transition.lead
    is PROTECT besides."""
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
    assert response.status_code == 200 and b"Cannot delete lead" in response.content
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
