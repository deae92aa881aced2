"""The board's views: fragments for htmx, redirects without JS, and every refusal with no state change."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from handoff import services
from handoff.selectors import PAGE_SIZE
from handoff.models import Handoff, RejectionReason, Transition
from leads.models import Lead
from tests.handoff.factories import HandoffFactory, TransitionFactory
from tests.leads.factories import (
    CampaignFactory,
    InteractionFactory,
    InteractionKindFactory,
    LeadFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
BREAKDOWN = [
    {"rule_id": 1, "type": "behavior", "label": "Demo request", "points": 40},
    {"rule_id": 2, "type": "fit", "label": "Decision-maker title", "points": 20},
    {"rule_id": 3, "type": "fit", "label": "Free mail", "points": -10},
    {"rule_id": 4, "type": "behavior", "label": "Whitepaper", "points": 8},
]


def make_handoff(
    stage="mql",
    *,
    assignee=None,
    age=timedelta(hours=1),
    sla_in=None,
    closed_ago=None,
    reason=None,
    **lead_fields,
):
    """An episode in `stage` that entered it `age` ago; its SLA is due `sla_in` from now (default: 24 h
    after it became an MQL)."""
    now = timezone.now()
    entered = now - age
    lead_fields.setdefault("score", 75)
    lead_fields.setdefault("fit_score", 35)
    lead_fields.setdefault("score_breakdown", BREAKDOWN)
    lead = LeadFactory(stage=stage, owner=assignee, stage_changed_at=entered, **lead_fields)
    return HandoffFactory(
        lead=lead,
        stage=stage,
        assignee=assignee,
        created_at=entered,
        sla_due_at=(now + sla_in) if sla_in is not None else entered + timedelta(hours=24),
        accepted_at=entered if stage in ("sal", "sql") else None,
        closed_at=(now - closed_ago) if closed_ago is not None else None,
        outcome={"recycled": "rejected", "disqualified": "disqualified"}.get(stage, ""),
        rejection_reason=reason,
    )


def ids(html, stage):
    """The handoff ids of one column, in order."""
    match = re.search(rf'<section class="column" data-stage="{stage}".*?</section>', html, re.S)
    assert match, f"no {stage} column"
    return [int(i) for i in re.findall(r'data-handoff-id="(\d+)"', match.group(0))]


def count(html, stage):
    return int(re.search(rf'id="count-{stage}"[^>]*>(\d+)<', html).group(1))


def reason(code):
    return RejectionReason.objects.get(code=code)


def state(handoff):
    handoff.refresh_from_db()
    lead = Lead.objects.get(pk=handoff.lead_id)
    return handoff.stage, lead.stage, handoff.assignee_id, Transition.objects.filter(handoff=handoff).count()


@pytest.fixture
def mine(sdr):
    return make_handoff(
        "mql",
        assignee=sdr,
        first_name="Ann",
        last_name="Mine",
        job_title="VP Marketing",
        company="Acme Analytics",
    )


@pytest.fixture
def theirs(sdr2):
    return make_handoff("mql", assignee=sdr2, first_name="Tom", last_name="Theirs")


@pytest.fixture
def unassigned(db):
    return make_handoff("mql", assignee=None, first_name="Una", last_name="Signed")


# --- the board page ----------------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/board/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_marketer_may_not_open_the_board(client_for, marketer):
    assert client_for(marketer).get("/board/").status_code == 403


def test_the_board_shows_three_columns_with_counts_and_cards(client_for, sdr, mine):
    make_handoff("sal", assignee=sdr)
    make_handoff("sql", assignee=sdr)
    response = client_for(sdr).get("/board/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    for stage in ("mql", "sal", "sql"):
        assert f'<section class="column" data-stage="{stage}"' in html
        assert count(html, stage) == 1
    assert ids(html, "mql") == [mine.pk]
    assert 'hx-headers=\'{"X-CSRFToken"' in html
    assert "<script>" not in html and " onclick=" not in html and "hx-on" not in html


def test_a_card_shows_why_the_lead_is_here(client_for, sdr):
    campaign = CampaignFactory(name="Q3 Webinar")
    h = make_handoff(
        "mql",
        assignee=sdr,
        first_name="Ann",
        last_name="Lee",
        job_title="VP Marketing",
        company="Acme Analytics",
        source="event",
        campaign=campaign,
        score=82,
        fit_score=35,
        age=timedelta(hours=5),
    )
    html = client_for(sdr).get("/board/").content.decode()
    card = re.search(rf'<article[^>]*data-handoff-id="{h.pk}".*?</article>', html, re.S).group(0)
    for text in (
        "Ann Lee",
        "VP Marketing",
        "Acme Analytics",
        ">82<",
        "fit 35",
        "Event",
        "Q3 Webinar",
        "Owner",
        "In MQL",
        "5 h",
        "+40 Demo request",
        "+20 Decision-maker title",
        "−10 Free mail",
        "SLA: 18 h left",
    ):
        assert text in card, text
    assert "Whitepaper" not in card, "only the top three reasons"
    assert re.search(r"<button[^>]*>Accept</button>", card) and re.search(
        r"<button[^>]*>Reject</button>", card
    )
    assert f'action="/handoffs/{h.pk}/accept"' in card and f'hx-post="/handoffs/{h.pk}/accept"' in card
    assert 'hx-target="closest article"' in card and 'hx-swap="outerHTML"' in card
    assert ">Qualify<" not in card and ">Claim<" not in card


def test_sla_states_are_spelled_out(client_for, sdr):
    overdue = make_handoff(assignee=sdr, sla_in=-timedelta(hours=3, minutes=5))
    soon = make_handoff(assignee=sdr, sla_in=timedelta(hours=2, minutes=30, seconds=30))
    html = client_for(sdr).get("/board/").content.decode()
    assert "card-sla-overdue" in html and "Overdue by 3 h" in html
    assert "card-sla-due_soon" in html and "Due soon: 2 h 30 min left" in html
    assert ids(html, "mql") == [overdue.pk, soon.pk], "most urgent first"


def test_mqls_come_most_urgent_first_and_other_columns_oldest_in_stage_first(client_for, sdr):
    later = make_handoff(assignee=sdr, sla_in=timedelta(hours=20))
    sooner = make_handoff(assignee=sdr, sla_in=timedelta(hours=2))
    young = make_handoff("sal", assignee=sdr, age=timedelta(hours=1))
    old = make_handoff("sal", assignee=sdr, age=timedelta(days=3))
    html = client_for(sdr).get("/board/").content.decode()
    assert ids(html, "mql") == [sooner.pk, later.pk]
    assert ids(html, "sal") == [old.pk, young.pk]


def test_the_htmx_refresh_answers_the_columns_fragment_with_the_filters(client_for, sdr, mine):
    response = client_for(sdr).get("/board/?source=inbound&sla=overdue", **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "board-filters" not in html
    assert html.strip().startswith('<div id="board-columns"')
    assert 'hx-trigger="every 15s"' in html
    assert 'hx-get="/board/?view=open&amp;owner=mine&amp;source=inbound&amp;sla=overdue"' in html
    assert "HX-Request" in response["Vary"]


def test_a_new_mql_shows_up_in_the_next_refresh(client_for, sdr, mine):
    client = client_for(sdr)
    assert ids(client.get("/board/", **HX).content.decode(), "mql") == [mine.pk]
    fresh = make_handoff(assignee=sdr, sla_in=timedelta(hours=1))
    html = client.get("/board/", **HX).content.decode()
    assert ids(html, "mql") == [fresh.pk, mine.pk] and count(html, "mql") == 2


def test_a_history_restore_gets_the_full_page(client_for, sdr, mine):
    html = client_for(sdr).get("/board/", HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HX).content.decode()
    assert "<html" in html


# --- filters -------------------------------------------------------------------------------------------


def test_an_sdr_sees_their_own_cards_by_default(client_for, sdr, mine, theirs, unassigned):
    html = client_for(sdr).get("/board/").content.decode()
    assert ids(html, "mql") == [mine.pk]
    assert '<option value="mine" selected>' in html


def test_an_sdr_never_sees_another_sdrs_cards(client_for, sdr, mine, theirs, unassigned):
    client = client_for(sdr)
    assert sorted(ids(client.get("/board/?owner=all").content.decode(), "mql")) == sorted(
        [mine.pk, unassigned.pk]
    )
    assert ids(client.get("/board/?owner=unassigned").content.decode(), "mql") == [unassigned.pk]


def test_a_manager_sees_every_card_by_default(client_for, manager, mine, theirs, unassigned):
    html = client_for(manager).get("/board/").content.decode()
    assert sorted(ids(html, "mql")) == sorted([mine.pk, theirs.pk, unassigned.pk])
    assert ids(client_for(manager).get("/board/?owner=unassigned").content.decode(), "mql") == [unassigned.pk]


def test_filters_by_source_and_campaign_combine(client_for, sdr):
    webinar, search = CampaignFactory(), CampaignFactory()
    hit = make_handoff(assignee=sdr, source="event", campaign=webinar)
    make_handoff(assignee=sdr, source="event", campaign=search)
    make_handoff(assignee=sdr, source="paid", campaign=webinar)
    html = client_for(sdr).get(f"/board/?source=event&campaign={webinar.pk}").content.decode()
    assert ids(html, "mql") == [hit.pk] and count(html, "mql") == 1
    assert f'<option value="{webinar.pk}" selected>' in html


@pytest.mark.parametrize(
    "sla, expected", [("overdue", ["late"]), ("due_soon", ["soon"]), ("on_track", ["fine"])]
)
def test_the_sla_filter_selects_mqls_by_state(client_for, sdr, sla, expected):
    cards = {
        "late": make_handoff(assignee=sdr, sla_in=-timedelta(minutes=5)),
        "soon": make_handoff(assignee=sdr, sla_in=timedelta(hours=3)),
        "fine": make_handoff(assignee=sdr, sla_in=timedelta(hours=5)),
    }
    sal = make_handoff("sal", assignee=sdr)
    html = client_for(sdr).get(f"/board/?sla={sla}").content.decode()
    assert ids(html, "mql") == [cards[name].pk for name in expected]
    assert ids(html, "sal") == [sal.pk], "SAL and SQL have met their SLA: the filter leaves them alone"
    assert "the SLA filter applies to MQLs only" in html


def test_bad_filter_values_fall_back_to_defaults(client_for, sdr, mine):
    response = client_for(sdr).get(
        "/board/?owner=everyone&source=tv&campaign=abc&sla=late&view=x&limit_mql=-3"
    )
    assert response.status_code == 200
    assert ids(response.content.decode(), "mql") == [mine.pk]


def test_the_closed_view_shows_recent_rejections_with_their_reason(client_for, sdr, mine):
    recycled = make_handoff(
        "recycled", assignee=sdr, closed_ago=timedelta(days=2), reason=reason("no_budget")
    )
    disq = make_handoff(
        "disqualified", assignee=sdr, closed_ago=timedelta(days=1), reason=reason("competitor")
    )
    make_handoff("recycled", assignee=sdr, closed_ago=timedelta(days=31), reason=reason("no_need"))
    html = client_for(sdr).get("/board/?view=closed").content.decode()
    assert ids(html, "recycled") == [recycled.pk] and ids(html, "disqualified") == [disq.pk]
    assert 'data-stage="mql"' not in html
    assert "Rejected: No budget" in html and "Rejected: Competitor" in html
    assert ">Accept<" not in html and ">Reject<" not in html


# --- "Show more" ------------------------------------------------------------------------------------


def test_a_column_shows_its_25_most_urgent_cards_and_a_show_more_link(client_for, sdr):
    assert PAGE_SIZE == 25  # docs/board.md: "Each column shows its 25 most urgent cards"
    made = [make_handoff(assignee=sdr, sla_in=timedelta(hours=1, minutes=i)) for i in range(28)]
    client = client_for(sdr)
    html = client.get("/board/").content.decode()
    assert ids(html, "mql") == [h.pk for h in made[:25]] and count(html, "mql") == 28
    assert "Show more" in html and "(3 more)" in html
    assert 'hx-get="/board/more/mql/?view=open&amp;owner=mine&amp;offset=25"' in html
    assert 'href="/board/?view=open&amp;owner=mine&amp;limit_mql=50"' in html  # without JavaScript

    more = client.get("/board/more/mql/?view=open&owner=mine&offset=25", **HX).content.decode()
    assert "<html" not in more
    assert 'hx-swap-oob="beforeend:#cards-mql"' in more
    assert [int(i) for i in re.findall(r'data-handoff-id="(\d+)"', more)] == [h.pk for h in made[25:]]
    assert "Show more" not in more

    # Without JS the link asks for a bigger page; the poll keeps what was shown the same way.
    assert len(ids(client.get("/board/?limit_mql=50").content.decode(), "mql")) == 28
    assert len(ids(client.get("/board/?limit_mql=26", **HX).content.decode(), "mql")) == 26
    # Never fewer than a page, whatever the poll asks for.
    assert len(ids(client.get("/board/?limit_mql=3", **HX).content.decode(), "mql")) == 25


def test_show_more_after_show_more_links_to_the_next_page(client_for, sdr):
    for i in range(53):
        make_handoff(assignee=sdr, sla_in=timedelta(hours=1, minutes=i))
    more = client_for(sdr).get("/board/more/mql/?view=open&owner=mine&offset=25", **HX).content.decode()
    assert len(re.findall(r'data-handoff-id="(\d+)"', more)) == 25 and "(3 more)" in more
    assert 'hx-get="/board/more/mql/?view=open&amp;owner=mine&amp;offset=50"' in more
    assert 'href="/board/?view=open&amp;owner=mine&amp;limit_mql=75"' in more


def test_show_more_refuses_an_unknown_column(client_for, sdr):
    assert client_for(sdr).get("/board/more/won/", **HX).status_code == 404


# --- accept ---------------------------------------------------------------------------------------


def test_accept_answers_the_sal_card_out_of_band_with_counts_and_an_event(client_for, sdr, mine):
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/accept", **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'hx-swap-oob="afterbegin:#cards-sal"' in html
    assert f'data-handoff-id="{mine.pk}" data-card-stage="sal"' in html
    assert re.search(r"<button[^>]*>Qualify</button>", html)
    assert '<span class="count" id="count-mql" hx-swap-oob="true">0</span>' in html
    assert '<span class="count" id="count-sal" hx-swap-oob="true">1</span>' in html
    assert '"handoff-moved"' in response["HX-Trigger"] and '"to": "sal"' in response["HX-Trigger"]
    assert state(mine) == ("sal", "sal", mine.assignee_id, 1)


def test_the_counts_after_an_action_follow_the_boards_filters(client_for, sdr, mine):
    make_handoff(assignee=sdr, source="paid")
    response = client_for(sdr).post(
        f"/handoffs/{mine.pk}/accept", HTTP_HX_CURRENT_URL="http://testserver/board/?source=paid", **HX
    )
    assert '<span class="count" id="count-mql" hx-swap-oob="true">1</span>' in response.content.decode()


def test_accept_without_javascript_redirects_back_to_the_board_with_its_filters(client_for, sdr, mine):
    response = client_for(sdr).post(
        f"/handoffs/{mine.pk}/accept", HTTP_REFERER="http://testserver/board/?source=inbound"
    )
    assert response.status_code == 302 and response["Location"] == "/board/?source=inbound"
    assert state(mine)[0] == "sal"


def test_an_unassigned_mql_can_be_accepted_and_becomes_yours(client_for, sdr, unassigned):
    assert client_for(sdr).post(f"/handoffs/{unassigned.pk}/accept", **HX).status_code == 200
    assert state(unassigned) == ("sal", "sal", sdr.pk, 1)


def test_a_manager_may_act_on_any_card(client_for, manager, theirs):
    assert client_for(manager).post(f"/handoffs/{theirs.pk}/accept", **HX).status_code == 200
    assert state(theirs)[0] == "sal"


# --- refusals: 405, 403, 404, 409 -----------------------------------------------------------------------

ACTIONS = ["accept", "qualify", "reject", "claim", "reassign"]


@pytest.mark.parametrize("action", ACTIONS)
def test_get_on_an_action_is_405(client_for, sdr, mine, action):
    response = client_for(sdr).get(f"/handoffs/{mine.pk}/{action}", **HX)
    assert response.status_code == 405
    assert state(mine) == ("mql", "mql", mine.assignee_id, 0)


@pytest.mark.parametrize("action", ["reject", "qualify", "reassign"])
def test_posting_to_a_dialog_url_is_405(client_for, manager, mine, action):
    assert client_for(manager).post(f"/handoffs/{mine.pk}/{action}/dialog", **HX).status_code == 405


@pytest.mark.parametrize("action", ACTIONS)
def test_a_marketer_gets_403_and_changes_nothing(client_for, marketer, mine, action):
    data = {"reason": reason("no_need").pk, "budget": "b", "authority": "a", "need": "n", "timing": "t"}
    response = client_for(marketer).post(f"/handoffs/{mine.pk}/{action}", data, **HX)
    assert response.status_code == 403
    assert state(mine) == ("mql", "mql", mine.assignee_id, 0)


@pytest.mark.parametrize("dialog", ["reject", "qualify", "reassign"])
def test_a_marketer_gets_403_for_the_dialogs(client_for, marketer, mine, dialog):
    assert client_for(marketer).get(f"/handoffs/{mine.pk}/{dialog}/dialog", **HX).status_code == 403


def test_an_sdr_may_not_reassign(client_for, sdr, sdr2, mine):
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/reassign", {"assignee": sdr2.pk}, **HX)
    assert response.status_code == 403
    assert state(mine)[2] == sdr.pk
    assert client_for(sdr).get(f"/handoffs/{mine.pk}/reassign/dialog", **HX).status_code == 403


@pytest.mark.parametrize("action", ["accept", "qualify", "reject", "claim"])
def test_another_sdrs_handoff_is_404_and_unchanged(client_for, sdr, theirs, action):
    data = {"reason": reason("no_need").pk, "budget": "b", "authority": "a", "need": "n", "timing": "t"}
    response = client_for(sdr).post(f"/handoffs/{theirs.pk}/{action}", data, **HX)
    assert response.status_code == 404
    assert "Tom" not in response.content.decode()
    assert state(theirs) == ("mql", "mql", theirs.assignee_id, 0)


@pytest.mark.parametrize("action", ["reject", "qualify"])
def test_another_sdrs_dialog_is_404(client_for, sdr, theirs, action):
    assert client_for(sdr).get(f"/handoffs/{theirs.pk}/{action}/dialog", **HX).status_code == 404


@pytest.mark.parametrize("action", ACTIONS)
def test_an_unknown_handoff_is_404(client_for, manager, action):
    assert client_for(manager).post(f"/handoffs/999999/{action}", **HX).status_code == 404


def test_accepting_a_card_someone_else_accepted_is_a_409_with_its_real_state(client_for, sdr, manager, mine):
    services.handoff_accept(handoff_id=mine.pk, actor=manager)
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/accept", **HX)
    html = response.content.decode()
    assert response.status_code == 409 and "<html" not in html
    assert 'role="alert"' in html and "already SAL" in html and "Now: <strong>SAL</strong>" in html
    assert f'data-handoff-id="{mine.pk}" data-card-stage="sal"' in html
    assert ">Accept<" not in html and re.search(r"<button[^>]*>Qualify</button>", html)
    assert '"handoff-conflict"' in response["HX-Trigger"]
    assert state(mine) == ("sal", "sal", mine.assignee_id, 1), "only the first accept happened"


def test_a_conflict_without_javascript_is_a_409_page(client_for, sdr, manager, mine):
    services.handoff_accept(handoff_id=mine.pk, actor=manager)
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/accept")
    assert response.status_code == 409
    assert "<html" in response.content.decode() and "already SAL" in response.content.decode()


def test_rejecting_a_closed_card_is_a_409(client_for, sdr, mine):
    services.handoff_reject(handoff_id=mine.pk, actor=sdr, reason=reason("no_need"))
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/reject", {"reason": reason("no_budget").pk}, **HX)
    assert response.status_code == 409
    assert "Rejected: No need" in response.content.decode()
    assert state(mine)[3] == 1


def test_qualifying_an_mql_is_a_409(client_for, sdr, mine):
    data = {"budget": "b", "authority": "a", "need": "n", "timing": "t"}
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/qualify", data, **HX)
    assert response.status_code == 409
    assert state(mine) == ("mql", "mql", mine.assignee_id, 0)


# --- losing an unassigned (or reassigned) card to another SDR: always 409, never 404 ---------------------

TAKEN = "Someone else took this lead first; it is theirs now."


def _other_sdr_takes(handoff):
    """Another SDR claims the card through the state machine, as their board would."""
    other = UserFactory(username="sdr3", first_name="Olga", last_name="Other", role="SDR")
    services.handoff_claim(handoff_id=handoff.pk, actor=other)
    return other


def _after_the_views_check(monkeypatch, then):
    """Run `then()` right after the view's access check passed: the request saw the card as the
    board showed it, and loses it before the state machine runs."""
    real, calls = services.check_access, []

    def check_access(user, handoff):
        real(user, handoff)
        calls.append(user)
        if len(calls) == 1:
            then()

    monkeypatch.setattr(services, "check_access", check_access)


@pytest.mark.parametrize("action", ["accept", "claim", "reject"])
@pytest.mark.parametrize("lands", ["before the request", "after the view's check"])
def test_losing_an_unassigned_card_to_another_sdr_is_always_a_409(
    client_for, sdr, unassigned, monkeypatch, action, lands
):
    """Whenever the other SDR's claim lands, the answer is the same 409 with the card as it is now
    (theirs), and nothing of this request happened. (Landing after the state machine's own check is
    tests/handoff/test_services.py::test_an_sdr_overtaken_inside_the_state_machine_gets_the_same_conflict,
    on PostgreSQL: it needs a second connection.)"""
    other = []
    if lands == "before the request":
        other.append(_other_sdr_takes(unassigned))
    else:
        _after_the_views_check(monkeypatch, lambda: other.append(_other_sdr_takes(unassigned)))
    data = {"reason": reason("no_need").pk} if action == "reject" else {}

    response = client_for(sdr).post(f"/handoffs/{unassigned.pk}/{action}", data, **HX)

    html = response.content.decode()
    assert response.status_code == 409, html[:500]
    assert TAKEN in html and "Now: <strong>MQL</strong> · owner Olga Other" in html
    assert response["HX-Retarget"] == f"#handoff-{unassigned.pk}" and response["HX-Reswap"] == "outerHTML"
    assert state(unassigned) == ("mql", "mql", other[0].pk, 0)
    assert Lead.objects.get(pk=unassigned.lead_id).owner_id == other[0].pk


@pytest.mark.parametrize("dialog", ["reject", "qualify"])
def test_opening_a_dialog_on_a_card_another_sdr_took_is_a_409_into_the_card(client_for, sdr, unassigned, dialog):
    _other_sdr_takes(unassigned)
    response = client_for(sdr).get(f"/handoffs/{unassigned.pk}/{dialog}/dialog", **HX)
    assert response.status_code == 409 and TAKEN in response.content.decode()
    assert response["HX-Retarget"] == f"#handoff-{unassigned.pk}", "the card, not the empty dialog"


def test_losing_a_card_without_javascript_is_the_409_page(client_for, sdr, unassigned):
    _other_sdr_takes(unassigned)
    response = client_for(sdr).post(f"/handoffs/{unassigned.pk}/accept")
    assert response.status_code == 409
    assert "<html" in response.content.decode() and TAKEN in response.content.decode()


def test_acting_on_a_card_a_manager_gave_to_another_sdr_is_a_409(client_for, sdr, sdr2, manager, mine):
    services.handoff_reassign(handoff_id=mine.pk, actor=manager, to_user=sdr2)
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/accept", **HX)
    assert response.status_code == 409
    assert "A manager gave this lead to someone else" in response.content.decode()
    assert state(mine) == ("mql", "mql", sdr2.pk, 0)


def test_a_card_that_was_always_another_sdrs_stays_404_after_it_moves(client_for, sdr, sdr2, theirs):
    """Only a card this SDR's board could have shown answers 409: another SDR's own card stays 404
    however it changes (accepted, reassigned between other SDRs)."""
    services.handoff_accept(handoff_id=theirs.pk, actor=sdr2)
    third = UserFactory(username="sdr3", role="SDR")
    services.handoff_reassign(handoff_id=theirs.pk, actor=UserFactory(username="boss", role="Manager"), to_user=third)
    for action in ("accept", "qualify", "reject", "claim"):
        assert client_for(sdr).post(f"/handoffs/{theirs.pk}/{action}", **HX).status_code == 404
    assert client_for(sdr).get(f"/handoffs/{theirs.pk}/reject/dialog", **HX).status_code == 404


def test_a_post_without_the_csrf_token_is_refused(sdr, mine):
    client = Client(enforce_csrf_checks=True)
    client.force_login(sdr)
    assert client.post(f"/handoffs/{mine.pk}/accept", **HX).status_code == 403
    assert state(mine)[0] == "mql"


# --- reject ----------------------------------------------------------------------------------------------


def test_the_reject_dialog_lists_only_active_reasons(client_for, sdr, mine):
    RejectionReason.objects.filter(code="duplicate").update(active=False)
    response = client_for(sdr).get(f"/handoffs/{mine.pk}/reject/dialog", **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert '<select name="reason"' in html and '<textarea name="note"' in html
    assert "No budget" in html and "Duplicate" not in html
    assert re.search(r'<button type="submit"[^>]*>Reject</button>', html)
    assert f'hx-post="/handoffs/{mine.pk}/reject"' in html and 'hx-target="closest article"' in html
    assert "autofocus" in html


def test_the_reject_dialog_without_javascript_is_a_page(client_for, sdr, mine):
    html = client_for(sdr).get(f"/handoffs/{mine.pk}/reject/dialog").content.decode()
    assert "<html" in html and f'action="/handoffs/{mine.pk}/reject"' in html and "hx-post" not in html


def test_reject_with_a_reason_and_note_answers_a_stub_and_records_the_feedback(client_for, sdr, mine):
    response = client_for(sdr).post(
        f"/handoffs/{mine.pk}/reject", {"reason": reason("no_budget").pk, "note": "Frozen till May"}, **HX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Rejected: No budget" in html and "recycled to marketing" in html
    assert '<span class="count" id="count-mql" hx-swap-oob="true">0</span>' in html
    assert state(mine) == ("recycled", "recycled", mine.assignee_id, 1)
    assert (mine.rejection_reason.code, mine.rejection_note) == ("no_budget", "Frozen till May")


def test_a_disqualifying_reason_disqualifies(client_for, sdr, mine):
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/reject", {"reason": reason("competitor").pk}, **HX)
    assert response.status_code == 200 and "(disqualified)" in response.content.decode()
    assert state(mine)[0] == "disqualified"


def test_a_sal_can_be_rejected_too(client_for, sdr):
    h = make_handoff("sal", assignee=sdr)
    assert (
        client_for(sdr)
        .post(f"/handoffs/{h.pk}/reject", {"reason": reason("bad_timing").pk}, **HX)
        .status_code
        == 200
    )
    assert state(h)[0] == "recycled"


@pytest.mark.parametrize("data", [{}, {"reason": ""}, {"reason": "999999"}, {"reason": "abc"}, "inactive"])
def test_an_invalid_rejection_is_400_with_the_dialog_and_changes_nothing(client_for, sdr, mine, data):
    if data == "inactive":
        RejectionReason.objects.filter(code="duplicate").update(active=False)
        data = {"reason": reason("duplicate").pk, "note": "kept"}
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/reject", data, **HX)
    html = response.content.decode()
    assert response.status_code == 400 and "<html" not in html
    assert '<select name="reason"' in html and 'aria-invalid="true"' in html and "Nothing was changed" in html
    assert response["HX-Retarget"] == f"#handoff-{mine.pk}-dialog" and response["HX-Reswap"] == "innerHTML"
    assert state(mine) == ("mql", "mql", mine.assignee_id, 0)


def test_an_invalid_rejection_without_javascript_is_a_400_page(client_for, sdr, mine):
    response = client_for(sdr).post(f"/handoffs/{mine.pk}/reject", {"note": "why"})
    assert response.status_code == 400 and "<html" in response.content.decode()
    assert "Choose a reason." in response.content.decode()
    assert state(mine)[0] == "mql"


# --- qualify ----------------------------------------------------------------------------------------------


def test_the_qualify_dialog_has_labelled_bant_fields(client_for, sdr):
    h = make_handoff("sal", assignee=sdr)
    html = client_for(sdr).get(f"/handoffs/{h.pk}/qualify/dialog", **HX).content.decode()
    for name, label in (
        ("budget", "Budget"),
        ("authority", "Authority"),
        ("need", "Need"),
        ("timing", "Timing"),
    ):
        assert f'<label for="h{h.pk}-{name}">{label}</label>' in html
        assert f'name="{name}"' in html
    assert re.search(r'<button type="submit"[^>]*>Qualify</button>', html)


def test_qualify_moves_the_card_to_sql_and_records_bant(client_for, sdr):
    h = make_handoff("sal", assignee=sdr)
    data = {"budget": "40k", "authority": "VP signs", "need": "Routing", "timing": "Q3", "note": "Warm"}
    response = client_for(sdr).post(f"/handoffs/{h.pk}/qualify", data, **HX)
    assert response.status_code == 200
    assert 'hx-swap-oob="afterbegin:#cards-sql"' in response.content.decode()
    assert state(h)[0] == "sql"
    lead = Lead.objects.get(pk=h.lead_id)
    assert (lead.bant_budget, lead.bant_authority, lead.bant_need, lead.bant_timing) == (
        "40k",
        "VP signs",
        "Routing",
        "Q3",
    )
    assert Transition.objects.get(handoff=h).note == "Warm"


def test_qualify_without_bant_is_400_and_changes_nothing(client_for, sdr):
    h = make_handoff("sal", assignee=sdr)
    response = client_for(sdr).post(f"/handoffs/{h.pk}/qualify", {"budget": "40k"}, **HX)
    assert response.status_code == 400
    assert response.content.decode().count('aria-invalid="true"') == 3
    assert 'value="40k"' in response.content.decode(), "what was typed is kept"
    assert state(h)[0] == "sal"


# --- claim and reassign ---------------------------------------------------------------------------------


def test_an_sdr_claims_an_unassigned_card_in_place(client_for, sdr, unassigned):
    html = client_for(sdr).get("/board/?owner=unassigned").content.decode()
    assert re.search(rf'data-handoff-id="{unassigned.pk}".*?<button[^>]*>Claim</button>', html, re.S)
    response = client_for(sdr).post(f"/handoffs/{unassigned.pk}/claim", **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'hx-swap-oob="afterbegin' not in html, "no stage change: the card is answered in place"
    assert "Sam" in html or sdr.username in html
    assert ">Claim<" not in html
    assert state(unassigned)[2] == sdr.pk


def test_claim_without_javascript_redirects(client_for, sdr, unassigned):
    assert client_for(sdr).post(f"/handoffs/{unassigned.pk}/claim").status_code == 302
    assert state(unassigned)[2] == sdr.pk


def test_a_manager_may_not_claim_and_the_board_offers_them_reassign(client_for, manager, unassigned):
    html = client_for(manager).get("/board/?owner=unassigned").content.decode()
    card = re.search(rf'data-handoff-id="{unassigned.pk}".*?</article>', html, re.S).group(0)
    assert ">Reassign<" in card and ">Claim<" not in card
    for headers in (HX, {}):
        response = client_for(manager).post(f"/handoffs/{unassigned.pk}/claim", **headers)
        assert response.status_code == 403
    assert state(unassigned) == ("mql", "mql", None, 0)
    assert Lead.objects.get(pk=unassigned.lead_id).owner_id is None


def test_a_manager_reassigns_to_an_active_sdr(client_for, manager, sdr, sdr2, mine):
    dialog = client_for(manager).get(f"/handoffs/{mine.pk}/reassign/dialog", **HX).content.decode()
    assert f'<option value="{sdr2.pk}">' in dialog and "Nobody (unassigned)" in dialog
    assert f'<option value="{manager.pk}"' not in dialog, "only active SDRs"
    response = client_for(manager).post(f"/handoffs/{mine.pk}/reassign", {"assignee": sdr2.pk}, **HX)
    assert response.status_code == 200
    assert state(mine)[2] == sdr2.pk and Lead.objects.get(pk=mine.lead_id).owner_id == sdr2.pk


def test_reassigning_to_someone_who_is_not_an_active_sdr_is_400(client_for, manager, marketer, mine):
    response = client_for(manager).post(f"/handoffs/{mine.pk}/reassign", {"assignee": marketer.pk}, **HX)
    assert response.status_code == 400 and "Choose an active SDR." in response.content.decode()
    assert state(mine)[2] == mine.assignee_id


# --- the lead page ------------------------------------------------------------------------------------


@pytest.fixture
def history(sdr, mine):
    """mine with a full score breakdown, interactions and transitions."""
    kind = InteractionKindFactory(slug="demo_request", label="Demo request")
    InteractionFactory(
        lead=mine.lead, kind=kind, occurred_at=timezone.now() - timedelta(days=2), properties={"page": "/old"}
    )
    InteractionFactory(
        lead=mine.lead,
        kind=kind,
        occurred_at=timezone.now() - timedelta(hours=1),
        properties={"page": "/new"},
    )
    TransitionFactory(
        lead=mine.lead,
        handoff=mine,
        from_stage="lead",
        to_stage="mql",
        actor=None,
        score=60,
        at=timezone.now() - timedelta(days=1),
    )
    services.handoff_accept(handoff_id=mine.pk, actor=sdr)
    services.handoff_reject(handoff_id=mine.pk, actor=sdr, reason=reason("no_budget"), note="Frozen till May")
    return mine


def test_the_lead_page_shows_breakdown_timeline_and_history(client_for, sdr, history):
    response = client_for(sdr).get(f"/leads/{history.lead_id}/")
    html = response.content.decode()
    assert response.status_code == 200
    for rule in ("Demo request", "Decision-maker title", "Free mail", "Whitepaper"):
        assert rule in html, "every rule of the breakdown"
    assert "+8" in html and "−10" in html
    assert html.index("page: /new") < html.index("page: /old"), "interactions newest first"
    assert "Lead → MQL" in html and "<em>system</em>" in html
    assert "SAL → Recycled" in html and "No budget" in html and "Frozen till May" in html
    assert html.index("SAL → Recycled") < html.index("MQL → SAL") < html.index("Lead → MQL"), "newest first"


def test_the_lead_page_shows_the_last_hundred_interactions(client_for, manager, mine):
    kind = InteractionKindFactory(slug="page_view")
    for i in range(103):
        InteractionFactory(lead=mine.lead, kind=kind, occurred_at=timezone.now() - timedelta(minutes=i))
    html = client_for(manager).get(f"/leads/{mine.lead_id}/").content.decode()
    assert html.count("<li><time datetime=") == 100 and "latest 100 of 103" in html


def test_sdrs_see_leads_of_their_own_and_unassigned_handoffs_only(client_for, sdr, mine, theirs, unassigned):
    client = client_for(sdr)
    assert client.get(f"/leads/{mine.lead_id}/").status_code == 200
    assert client.get(f"/leads/{unassigned.lead_id}/").status_code == 200
    assert client.get(f"/leads/{theirs.lead_id}/").status_code == 404
    assert client.get(f"/leads/{LeadFactory().pk}/").status_code == 404, "a lead with no handoff"


def test_an_sdr_still_sees_a_lead_they_rejected_while_it_was_unassigned(client_for, sdr, sdr2, unassigned):
    services.handoff_reject(handoff_id=unassigned.pk, actor=sdr, reason=reason("no_need"))
    assert client_for(sdr).get(f"/leads/{unassigned.lead_id}/").status_code == 200
    assert client_for(sdr2).get(f"/leads/{unassigned.lead_id}/").status_code == 404, (
        "closed: no longer open to all"
    )


@pytest.mark.parametrize("role", ["marketer", "manager"])
def test_marketers_and_managers_read_every_lead(client_for, request, role, theirs):
    user = request.getfixturevalue(role)
    assert client_for(user).get(f"/leads/{theirs.lead_id}/").status_code == 200
    assert client_for(user).get(f"/leads/{LeadFactory().pk}/").status_code == 200


def test_a_user_without_a_role_and_unknown_leads_get_404(client_for, manager, theirs):
    nobody = UserFactory(username="nobody")
    nobody.save()  # the factory saves the password hash only when it adds a role
    assert client_for(nobody).get(f"/leads/{theirs.lead_id}/").status_code == 404
    assert client_for(manager).get("/leads/999999/").status_code == 404


# --- navigation -----------------------------------------------------------------------------------------


def test_the_board_link_is_in_the_nav_for_sdrs_and_managers_only(client_for, sdr, manager, marketer):
    board_link = f'<a href="{reverse("board")}">Board</a>'
    assert board_link in client_for(sdr).get("/").content.decode()
    assert board_link in client_for(manager).get("/").content.decode()
    assert board_link not in client_for(marketer).get("/").content.decode()
