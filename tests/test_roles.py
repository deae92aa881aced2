"""What each role may and may not open (the design's Roles section)."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from leads.models import Lead
from tests.leads.factories import CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db

ALLOWED, DENIED = "allowed", "denied"

# url name (with a lead id where needed) → expected answer per role.
MATRIX = {
    "home": {"marketer": ALLOWED, "sdr": ALLOWED, "manager": ALLOWED},
    "admin:index": {"marketer": ALLOWED, "sdr": DENIED, "manager": ALLOWED},
    "admin:leads_lead_changelist": {"marketer": ALLOWED, "sdr": DENIED, "manager": ALLOWED},
    "admin:leads_lead_add": {"marketer": ALLOWED, "sdr": DENIED, "manager": DENIED},
    "admin:leads_lead_import": {"marketer": ALLOWED, "sdr": DENIED, "manager": DENIED},
    "admin:leads_campaign_add": {"marketer": ALLOWED, "sdr": DENIED, "manager": DENIED},
    "admin:leads_apitoken_add": {"marketer": ALLOWED, "sdr": DENIED, "manager": DENIED},
    "admin:handoff_rejectionreason_add": {"marketer": ALLOWED, "sdr": DENIED, "manager": DENIED},
    "admin:handoff_transition_changelist": {"marketer": ALLOWED, "sdr": DENIED, "manager": ALLOWED},
    "admin:auth_user_changelist": {"marketer": DENIED, "sdr": DENIED, "manager": DENIED},
}


@pytest.mark.parametrize("role", ["marketer", "sdr", "manager"])
@pytest.mark.parametrize("url_name", list(MATRIX))
def test_each_role_opens_exactly_what_the_design_gives_it(client_for, request, role, url_name):
    client = client_for(request.getfixturevalue(role))
    response = client.get(reverse(url_name))

    if MATRIX[url_name][role] == ALLOWED:
        assert response.status_code == 200
    else:
        # Non-staff are sent to the admin login; staff without the permission get 403.
        assert response.status_code in (302, 403)
        if response.status_code == 302:
            assert "/login/" in response["Location"]


@pytest.mark.parametrize(
    "url", ["/", "/admin/", "/admin/leads/lead/", "/admin/leads/lead/import/", "/logout/"]
)
def test_an_anonymous_visitor_sees_only_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert client.get("/login/").status_code == 200


def test_a_manager_reads_a_lead_but_cannot_change_it(client_for, manager):
    lead = LeadFactory(job_title="Analyst")
    client = client_for(manager)
    url = reverse("admin:leads_lead_change", args=[lead.pk])

    page = client.get(url)
    assert page.status_code == 200 and "Save" not in page.content.decode()

    response = client.post(url, {"email": lead.email, "job_title": "CEO", "source": "inbound"})
    assert response.status_code == 403
    lead.refresh_from_db()
    assert lead.job_title == "Analyst"


def test_a_marketer_edits_a_lead_but_not_its_stage_or_score(client_for, marketer):
    lead = LeadFactory(job_title="Analyst")
    campaign = CampaignFactory()
    client = client_for(marketer)
    response = client.post(
        reverse("admin:leads_lead_change", args=[lead.pk]),
        {
            "email": lead.email,
            "job_title": "CEO",
            "source": "paid",
            "campaign": campaign.pk,
            "stage": "sql",
            "score": "999",
            "interactions-TOTAL_FORMS": "0",
            "interactions-INITIAL_FORMS": "0",
            "transitions-TOTAL_FORMS": "0",
            "transitions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    lead.refresh_from_db()
    assert (lead.job_title, lead.source, lead.stage, lead.score) == ("CEO", "paid", "lead", 0)


def test_the_roles_migration_creates_the_three_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Marketer", "SDR", "Manager"}
    sdr_perms = set(Group.objects.get(name="SDR").permissions.values_list("codename", flat=True))
    assert "work_handoff" in sdr_perms and "change_lead" not in sdr_perms
    marketer_perms = set(Group.objects.get(name="Marketer").permissions.values_list("codename", flat=True))
    assert "work_handoff" not in marketer_perms and "import_lead" in marketer_perms


def test_logging_out_ends_the_session(client_for, sdr):
    client = client_for(sdr)
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302
    assert Lead.objects.count() == 0
