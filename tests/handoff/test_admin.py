"""Marketing sees the feedback: transitions with reasons and notes, rejections filterable in the admin."""

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from handoff import services
from handoff.admin import TransitionInline
from handoff.models import Handoff, RejectionReason
from leads.admin import LeadAdmin
from leads.models import Lead
from tests.handoff.test_board_views import make_handoff
from tests.leads.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def reason(code):
    return RejectionReason.objects.get(code=code)


@pytest.fixture
def rejections(sdr):
    """Three rejected handoffs that differ in reason, source, campaign and model version, one open."""
    webinar, search = CampaignFactory(name="Webinar"), CampaignFactory(name="Search")
    made = {}
    for key, code, source, campaign, version in (
        ("budget", "no_budget", "paid", search, "Default v1"),
        ("timing", "bad_timing", "event", webinar, "Default v2"),
        ("competitor", "competitor", "paid", webinar, "Default v2"),
    ):
        h = make_handoff("mql", assignee=sdr, source=source, campaign=campaign, first_name=key.title())
        Handoff.objects.filter(pk=h.pk).update(model_version=version)
        services.handoff_reject(handoff_id=h.pk, actor=sdr, reason=reason(code), note=f"note about {key}")
        made[key] = h
    made["open"] = make_handoff("mql", assignee=sdr, source="paid", campaign=search, first_name="Open")
    return made


def listed(client, query):
    html = client.get(reverse("admin:handoff_handoff_changelist") + query).content.decode()
    return {int(pk) for pk in re.findall(r"/admin/handoff/handoff/(\d+)/change/", html)}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?rejected=yes", {"budget", "timing", "competitor"}),
        ("?rejected=no", {"open"}),
        ("?rejection_reason__id__exact={no_budget}", {"budget"}),
        ("?lead__source=paid&rejected=yes", {"budget", "competitor"}),
        ("?lead__campaign__id__exact={webinar}", {"timing", "competitor"}),
        ("?model_version=Default+v2", {"timing", "competitor"}),
        ("?outcome=disqualified", {"competitor"}),
    ],
)
def test_marketers_filter_rejections_by_reason_source_campaign_and_model_version(
    client_for, marketer, rejections, query, expected
):
    query = query.format(
        no_budget=reason("no_budget").pk,
        webinar=Lead.objects.get(pk=rejections["timing"].lead_id).campaign_id,
    )
    assert listed(client_for(marketer), query) == {rejections[k].pk for k in expected}


def test_a_handoff_shows_its_transitions_with_reasons_and_notes(client_for, marketer, rejections):
    h = rejections["budget"]
    response = client_for(marketer).get(reverse("admin:handoff_handoff_change", args=[h.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Stage history" in html
    assert "No budget" in html and "note about budget" in html and "Recycled" in html
    assert 'name="_save"' not in html, "read-only"


def test_the_reasons_list_counts_rejections_and_links_to_them(client_for, marketer, rejections):
    html = client_for(marketer).get(reverse("admin:handoff_rejectionreason_changelist")).content.decode()
    link = (
        reverse("admin:handoff_handoff_changelist") + f"?rejection_reason__id__exact={reason('no_budget').pk}"
    )
    assert f'<a href="{link}">1</a>' in html
    assert "Rejections" in html


def test_the_transition_inline_works_on_the_lead_admin_page(client_for, marketer, rejections):
    """What leads/admin.py needs: `inlines = [InteractionInline, TransitionInline]` on LeadAdmin."""
    lead = Lead.objects.get(pk=rejections["competitor"].lead_id)
    lead_admin = type(
        "LeadAdminWithHistory", (LeadAdmin,), {"inlines": [*LeadAdmin.inlines, TransitionInline]}
    )(Lead, admin.site)
    request = RequestFactory().get(reverse("admin:leads_lead_change", args=[lead.pk]))
    request.user = marketer
    request.session = {}
    request._messages = []
    response = lead_admin.change_view(request, str(lead.pk))
    html = response.render().content.decode()
    assert "Stage history" in html
    assert "Competitor" in html and "note about competitor" in html and "Disqualified" in html


def test_transitions_can_be_filtered_by_source_and_campaign(client_for, manager, rejections):
    url = reverse("admin:handoff_transition_changelist") + "?to_stage=recycled&lead__source=event"
    response = client_for(manager).get(url)
    assert response.status_code == 200
    assert "note about timing" in response.content.decode()
    assert "note about budget" not in response.content.decode()


def test_managers_see_the_feedback_read_only(client_for, manager, rejections):
    h = rejections["timing"]
    response = client_for(manager).get(reverse("admin:handoff_handoff_change", args=[h.pk]))
    assert response.status_code == 200 and "note about timing" in response.content.decode()
    assert (
        client_for(manager).post(reverse("admin:handoff_handoff_change", args=[h.pk]), {}).status_code == 403
    )


def test_a_handoff_closed_long_ago_still_shows_in_the_admin(client_for, marketer, sdr):
    h = make_handoff("recycled", assignee=sdr, closed_ago=timedelta(days=400), reason=reason("no_need"))
    assert h.pk in listed(client_for(marketer), "?rejected=yes")
