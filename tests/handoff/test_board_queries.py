"""The board's number of queries does not grow with its cards (issue 4: 10,000 open handoffs)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from handoff import services
from tests.handoff.factories import TransitionFactory
from tests.handoff.test_board_views import HX, make_handoff
from tests.leads.factories import CampaignFactory, InteractionFactory, InteractionKindFactory, UserFactory

pytestmark = pytest.mark.django_db

# Session, user, the user's permissions (2), campaigns for the filter, the counts, one per column.
BOARD_QUERIES = 9


def fill(n, *, sdr, others):
    """n open handoffs spread over the three columns, sources, campaigns and owners."""
    campaigns = [CampaignFactory() for _ in range(3)]
    owners = [sdr, None, *others]
    for i in range(n):
        make_handoff(
            ("mql", "sal", "sql")[i % 3],
            assignee=owners[i % len(owners)] if i % 3 else sdr,
            campaign=campaigns[i % 3] if i % 4 else None,
            source=("inbound", "paid", "event")[i % 3],
            sla_in=timedelta(hours=(i % 30) - 5),
        )


def queries(client, url, **extra):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return len(ctx.captured_queries), response


@pytest.mark.parametrize("role", ["sdr", "manager"])
@pytest.mark.parametrize(
    "url, extra",
    [
        ("/board/", {}),
        ("/board/", HX),
        ("/board/?owner=all&source=paid&sla=overdue", {}),
        ("/board/?view=closed", {}),
        ("/board/more/mql/?offset=1", HX),
    ],
)
def test_the_board_makes_the_same_queries_for_3_and_60_cards(
    client_for, request, sdr, sdr2, role, url, extra
):
    user = request.getfixturevalue(role)
    client = client_for(user)
    fill(3, sdr=sdr, others=[sdr2])
    few, _ = queries(client, url, **extra)
    fill(57, sdr=sdr, others=[sdr2])
    many, response = queries(client, url, **extra)
    assert many == few
    if url == "/board/" and not extra:
        assert few == BOARD_QUERIES
        assert response.content.decode().count("data-handoff-id=") >= 20, (
            "the second run really shows more cards"
        )


def test_an_action_makes_the_same_queries_whatever_the_board_holds(client_for, sdr, sdr2):
    client = client_for(sdr)
    fill(3, sdr=sdr, others=[sdr2])
    first = make_handoff(assignee=sdr)
    with CaptureQueriesContext(connection) as few:
        assert client.post(f"/handoffs/{first.pk}/accept", **HX).status_code == 200
    fill(57, sdr=sdr, others=[sdr2])
    second = make_handoff(assignee=sdr)
    with CaptureQueriesContext(connection) as many:
        assert client.post(f"/handoffs/{second.pk}/accept", **HX).status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_lead_page_does_not_grow_with_its_history(client_for, manager, sdr):
    client = client_for(manager)
    h = make_handoff(assignee=sdr)
    kind = InteractionKindFactory(slug="page_view")
    InteractionFactory(lead=h.lead, kind=kind)
    TransitionFactory(lead=h.lead, handoff=h, actor=sdr)
    few, _ = queries(client, f"/leads/{h.lead_id}/")
    actors = [UserFactory(role="SDR") for _ in range(5)]
    for i in range(40):
        InteractionFactory(lead=h.lead, kind=kind, occurred_at=timezone.now() - timedelta(hours=i))
        TransitionFactory(lead=h.lead, handoff=h, actor=actors[i % 5], reason=None)
    services.handoff_accept(handoff_id=h.pk, actor=sdr)
    many, _ = queries(client, f"/leads/{h.lead_id}/")
    assert many == few
