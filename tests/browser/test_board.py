"""The handoff board in real headless Chromium: an SDR signs in through the login form and works cards.

Each test's final screenshot is saved by the `page` fixture; the named screenshots board.png,
reject-dialog.png, qualify-dialog.png and conflict.png are the ones the issue asks for.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from handoff import services
from handoff.models import Handoff, RejectionReason, Transition
from tests.browser.conftest import ARTIFACTS
from tests.handoff.factories import HandoffFactory, TransitionFactory
from tests.leads.factories import (
    CampaignFactory,
    InteractionFactory,
    InteractionKindFactory,
    LeadFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "pw-for-tests"

BREAKDOWN = [
    {"rule_id": 1, "type": "behavior", "label": "Demo request", "points": 40},
    {"rule_id": 2, "type": "fit", "label": "Decision-maker title", "points": 20},
    {"rule_id": 3, "type": "behavior", "label": "Pricing page", "points": 17},
    {"rule_id": 4, "type": "fit", "label": "Free mail", "points": -10},
]


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def card_in(page, stage, handoff):
    return page.locator(f'section[data-stage="{stage}"] article[data-handoff-id="{handoff.pk}"]')


def make_handoff(stage, *, assignee, hours_ago=1, sla_in_hours=None, **lead):
    now = timezone.now()
    created = now - timedelta(hours=hours_ago)
    lead = LeadFactory(
        stage=stage,
        owner=assignee,
        score=lead.pop("score", 77),
        fit_score=lead.pop("fit_score", 30),
        score_breakdown=BREAKDOWN,
        stage_changed_at=created,
        **lead,
    )
    sla = now + timedelta(hours=sla_in_hours) if sla_in_hours is not None else created + timedelta(hours=24)
    return HandoffFactory(
        lead=lead,
        stage=stage,
        assignee=assignee,
        created_at=created,
        sla_due_at=sla,
        accepted_at=created if stage in ("sal", "sql") else None,
        qualified_at=created if stage == "sql" else None,
    )


@pytest.fixture
def sdr_user(db):
    return UserFactory(username="sam", first_name="Sam", last_name="Ortiz", role="SDR")


@pytest.fixture
def board_data(sdr_user):
    """A realistic small board: MQLs on track, due soon and overdue, a SAL, a SQL, an unassigned MQL."""
    webinar = CampaignFactory(name="Q3 Webinar: Scoring that sales trusts")
    search = CampaignFactory(name="Paid search — brand")
    data = {
        "overdue": make_handoff(
            "mql",
            assignee=sdr_user,
            hours_ago=27,
            sla_in_hours=-3,
            first_name="Olivia",
            last_name="Overdue",
            job_title="VP Marketing",
            company="Northwind Traders",
            source="paid",
            campaign=search,
            score=91,
        ),
        "due_soon": make_handoff(
            "mql",
            assignee=sdr_user,
            hours_ago=21,
            sla_in_hours=2.6,
            first_name="Dan",
            last_name="Duesoon",
            job_title="Head of Revenue Operations",
            company="Contoso Pharmaceuticals International",
            source="event",
            campaign=webinar,
        ),
        "mql": make_handoff(
            "mql",
            assignee=sdr_user,
            hours_ago=2,
            first_name="Ann",
            last_name="Accept",
            job_title="Director of Demand Generation",
            company="Acme Analytics",
            source="inbound",
            campaign=webinar,
            score=84,
        ),
        "unassigned": make_handoff(
            "mql",
            assignee=None,
            hours_ago=1,
            first_name="Una",
            last_name="Signed",
            job_title="CMO",
            company="Fabrikam",
            source="referral",
        ),
        "sal": make_handoff(
            "sal",
            assignee=sdr_user,
            hours_ago=30,
            first_name="Sal",
            last_name="Qualify",
            job_title="Chief Revenue Officer",
            company="Globex",
            source="content",
            campaign=webinar,
            score=73,
        ),
        "sql": make_handoff(
            "sql",
            assignee=sdr_user,
            hours_ago=50,
            first_name="Quinn",
            last_name="Sequel",
            job_title="VP Sales",
            company="Initech",
            source="partner",
            score=88,
        ),
    }
    return data


def open_board(page, live_server, sign_in):
    sign_in("sam", PASSWORD)
    page.goto(f"{live_server.url}/board/")
    page.locator('section[data-stage="mql"]').wait_for()


def test_an_sdr_accepts_an_mql_and_it_moves_to_the_sal_column_without_a_reload(
    page, live_server, sign_in, board_data
):
    open_board(page, live_server, sign_in)
    shot(page, "board.png")
    h = board_data["mql"]
    assert (
        page.locator('section[data-stage="mql"] .count').inner_text() == "3"
    )  # mine: not the unassigned one
    assert page.locator('section[data-stage="sal"] .count').inner_text() == "1"
    card = card_in(page, "mql", h)
    assert "+40 Demo request" in card.inner_text()
    page.evaluate("window.__noReload = 'still here'")

    card.get_by_role("button", name="Accept").click()

    moved = card_in(page, "sal", h)
    moved.wait_for()
    assert card_in(page, "mql", h).count() == 0
    assert page.evaluate("window.__noReload") == "still here", "the page was not reloaded"
    assert page.locator('section[data-stage="mql"] .count').inner_text() == "2"
    assert page.locator('section[data-stage="sal"] .count').inner_text() == "2"
    assert moved.get_by_role("button", name="Qualify").is_visible()
    assert "Accepted Ann Accept" in page.locator("#board-status").inner_text()
    h.refresh_from_db()
    assert h.stage == "sal"


def test_an_overdue_mql_stands_out_with_words_and_a_red_border(page, live_server, sign_in, board_data):
    open_board(page, live_server, sign_in)
    overdue = card_in(page, "mql", board_data["overdue"])
    assert "Overdue by 3 h" in overdue.inner_text()
    assert "Due soon: 2 h 3" in card_in(page, "mql", board_data["due_soon"]).inner_text()
    border = overdue.evaluate("el => getComputedStyle(el).borderTopColor")
    assert border == "rgb(180, 35, 24)"  # var(--bad)
    # Most urgent first: the overdue card heads the MQL column.
    first = page.locator('section[data-stage="mql"] article').first
    assert first.get_attribute("data-handoff-id") == str(board_data["overdue"].pk)


def test_an_sdr_rejects_a_card_with_a_reason_and_a_note_through_the_dialog(
    page, live_server, sign_in, board_data
):
    open_board(page, live_server, sign_in)
    h = board_data["mql"]
    card = card_in(page, "mql", h)
    card.get_by_role("button", name="Reject").click()

    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    reason = dialog.get_by_label("Reason")
    assert reason.evaluate("el => el === document.activeElement"), "the dialog focuses its first field"
    reason.select_option(label="No budget")
    dialog.get_by_label("Note").fill("Budget frozen until May; revisit then.")
    shot(page, "reject-dialog.png")
    dialog.get_by_role("button", name="Reject").click()

    stub = page.locator(f'article[data-handoff-id="{h.pk}"]')
    stub.get_by_text("Rejected: No budget").wait_for()
    assert page.get_by_role("dialog").count() == 0
    assert page.locator('section[data-stage="mql"] .count').inner_text() == "2"
    h.refresh_from_db()
    assert (h.stage, h.rejection_reason.code, h.rejection_note) == (
        "recycled",
        "no_budget",
        "Budget frozen until May; revisit then.",
    )
    assert (
        Transition.objects.get(handoff=h, to_stage="recycled").note
        == "Budget frozen until May; revisit then."
    )


def test_escape_closes_a_dialog_and_returns_focus_to_its_button(page, live_server, sign_in, board_data):
    open_board(page, live_server, sign_in)
    card = card_in(page, "mql", board_data["mql"])
    card.get_by_role("button", name="Reject").click()
    page.get_by_role("dialog").wait_for()

    page.keyboard.press("Escape")

    page.get_by_role("dialog").wait_for(state="hidden")
    assert card.get_by_role("button", name="Reject").evaluate("el => el === document.activeElement")
    assert Handoff.objects.get(pk=board_data["mql"].pk).stage == "mql"


def test_an_sdr_qualifies_a_sal_card_through_the_bant_dialog(page, live_server, sign_in, board_data):
    open_board(page, live_server, sign_in)
    h = board_data["sal"]
    card_in(page, "sal", h).get_by_role("button", name="Qualify").click()

    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert dialog.get_by_label("Budget").evaluate("el => el === document.activeElement")
    dialog.get_by_label("Budget").fill("40k approved for Q3")
    dialog.get_by_label("Authority").fill("CRO signs; CFO informed")
    dialog.get_by_label("Need", exact=True).fill("Replace spreadsheet lead routing")
    dialog.get_by_label("Timing").fill("Decision by end of quarter")
    shot(page, "qualify-dialog.png")
    page.evaluate("window.__noReload = 'still here'")
    dialog.get_by_role("button", name="Qualify").click()

    card_in(page, "sql", h).wait_for()
    assert card_in(page, "sal", h).count() == 0
    assert page.evaluate("window.__noReload") == "still here"
    assert page.locator('section[data-stage="sql"] .count').inner_text() == "2"
    lead = Handoff.objects.select_related("lead").get(pk=h.pk).lead
    assert (lead.stage, lead.bant_budget, lead.bant_need) == (
        "sql",
        "40k approved for Q3",
        "Replace spreadsheet lead routing",
    )


def test_a_conflict_shows_the_message_and_the_cards_real_state(page, live_server, sign_in, board_data):
    manager = UserFactory(username="morgan", first_name="Morgan", last_name="Lee", role="Manager")
    open_board(page, live_server, sign_in)
    h = board_data["mql"]
    card = card_in(page, "mql", h)
    # Between page load and click, somebody else accepts the same card.
    services.handoff_accept(handoff_id=h.pk, actor=manager)

    card.get_by_role("button", name="Accept").click()

    alert = card.get_by_role("alert")
    alert.wait_for()
    assert "already SAL" in alert.inner_text()
    assert "Now: SAL" in alert.inner_text()
    assert card.get_attribute("data-card-stage") == "sal"
    assert card.get_by_role("button", name="Accept").count() == 0, "the card shows its real state"
    assert alert.evaluate("el => el === document.activeElement"), "focus moves to the message"
    card.scroll_into_view_if_needed()
    shot(page, "conflict.png")
    assert Transition.objects.filter(handoff=h).count() == 1, "only the other user's accept happened"


def test_a_card_another_sdr_took_shows_the_conflict_instead_of_its_dialog(
    page, live_server, sign_in, board_data
):
    """Sam's board shows an unassigned MQL; Olga claims it first. Sam's Reject answers 409 into the
    card (not into the empty dialog): who has it now, and no buttons left."""
    sign_in("sam", PASSWORD)
    page.goto(f"{live_server.url}/board/?owner=unassigned")
    h = board_data["unassigned"]
    card = card_in(page, "mql", h)
    card.wait_for()
    olga = UserFactory(username="olga", first_name="Olga", last_name="Other", role="SDR")
    services.handoff_claim(handoff_id=h.pk, actor=olga)

    card.get_by_role("button", name="Reject").click()

    alert = card.get_by_role("alert")
    alert.wait_for()
    assert "Someone else took this lead first" in alert.inner_text()
    assert "owner Olga Other" in alert.inner_text()
    assert page.locator("dialog[open]").count() == 0
    assert card.get_by_role("button").count() == 0, "nothing left for Sam to do on it"
    assert alert.evaluate("el => el === document.activeElement"), "focus moves to the message"
    assert not Transition.objects.filter(handoff=h).exists()


def test_a_new_mql_appears_without_a_reload_but_not_while_a_dialog_is_open(
    page, live_server, sign_in, board_data, sdr_user
):
    page.clock.install()
    open_board(page, live_server, sign_in)
    page.evaluate("window.__noReload = 'still here'")
    first = make_handoff("mql", assignee=sdr_user, hours_ago=0, first_name="Nina", last_name="New")

    card = card_in(page, "mql", board_data["mql"])
    card.get_by_role("button", name="Reject").click()
    page.get_by_role("dialog").wait_for()
    page.clock.run_for(16_000)
    page.wait_for_timeout(300)
    assert card_in(page, "mql", first).count() == 0, "no refresh while a dialog is open"
    assert page.get_by_role("dialog").is_visible()

    page.keyboard.press("Escape")
    page.clock.run_for(16_000)
    card_in(page, "mql", first).wait_for()
    assert page.locator('section[data-stage="mql"] .count').inner_text() == "4"
    assert page.evaluate("window.__noReload") == "still here"


def test_the_board_works_without_javascript(browser, live_server, board_data):
    context = browser.new_context(viewport={"width": 1366, "height": 800}, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill("sam")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{live_server.url}/board/?source=inbound")
        h = board_data["mql"]
        card_in(page, "mql", h).get_by_role("button", name="Accept").click()
        assert page.url.endswith("/board/?source=inbound"), "back on the board with its filters"
        assert card_in(page, "sal", h).count() == 1
        card_in(page, "sal", h).get_by_role("button", name="Reject").click()
        page.get_by_label("Reason").select_option(label="Bad timing")
        page.get_by_role("button", name="Reject").click()
        assert "/board/" in page.url
        h.refresh_from_db()
        assert (h.stage, h.rejection_reason) == ("recycled", RejectionReason.objects.get(code="bad_timing"))
    finally:
        context.close()


def test_an_sdr_opens_a_lead_from_its_card_and_sees_why_it_scored(
    page, live_server, sign_in, board_data, sdr_user
):
    h = board_data["sal"]
    TransitionFactory(
        lead=h.lead, handoff=h, from_stage="lead", to_stage="mql", actor=None, score=64, at=h.created_at
    )
    TransitionFactory(
        lead=h.lead,
        handoff=h,
        from_stage="mql",
        to_stage="sal",
        actor=sdr_user,
        score=73,
        at=h.created_at + timedelta(hours=1),
    )
    kind = InteractionKindFactory(slug="demo_request", label="Demo request")
    for days, page_path in ((9, "/pricing"), (3, "/demo")):
        InteractionFactory(
            lead=h.lead,
            kind=kind,
            occurred_at=timezone.now() - timedelta(days=days),
            properties={"page": page_path},
        )
    open_board(page, live_server, sign_in)

    card_in(page, "sal", h).get_by_role("link", name="Sal Qualify").click()

    page.get_by_role("heading", name="Sal Qualify").wait_for()
    breakdown = page.get_by_role("table").filter(has_text="Every rule that contributed")
    assert breakdown.get_by_role("row").count() == 1 + len(BREAKDOWN), "every rule, not just the top three"
    assert "Free mail" in breakdown.inner_text()
    history = page.locator("table.history")
    assert "MQL → SAL" in history.inner_text() and "system" in history.inner_text()
    shot(page, "lead-detail.png")


def test_filters_update_the_board_in_place_and_stay_in_the_url(page, live_server, sign_in, board_data):
    open_board(page, live_server, sign_in)
    page.evaluate("window.__noReload = 'still here'")
    assert card_in(page, "mql", board_data["unassigned"]).count() == 0

    page.get_by_label("Owner").select_option(label="All")
    card_in(page, "mql", board_data["unassigned"]).wait_for()
    assert "owner=all" in page.url
    assert card_in(page, "mql", board_data["unassigned"]).get_by_role("button", name="Claim").is_visible()

    page.get_by_label("SLA (MQLs)").select_option(label="Overdue")
    page.wait_for_url("**sla=overdue**")
    page.locator('section[data-stage="mql"] .count').filter(has_text="1").wait_for()
    assert page.locator('section[data-stage="mql"] article').count() == 1
    assert card_in(page, "mql", board_data["overdue"]).count() == 1
    assert page.evaluate("window.__noReload") == "still here"

    page.reload()  # the filters are in the URL
    assert page.get_by_label("SLA (MQLs)").input_value() == "overdue"
    assert page.locator('section[data-stage="mql"] article').count() == 1


def test_show_more_appends_the_next_cards_and_the_keyboard_reaches_them(page, live_server, sign_in, sdr_user):
    made = [
        make_handoff("mql", assignee=sdr_user, sla_in_hours=1 + i / 10, first_name=f"Lead{i:02d}")
        for i in range(28)
    ]
    page.clock.install()
    open_board(page, live_server, sign_in)
    column = page.locator('section[data-stage="mql"]')
    assert column.locator("article").count() == 25

    more = column.get_by_role("link", name="Show more")
    more.focus()
    page.keyboard.press("Enter")

    card_in(page, "mql", made[27]).wait_for()
    assert column.locator("article").count() == 28
    assert column.get_by_role("link", name="Show more").count() == 0
    # Tab order inside a card: its name, then its buttons.
    card = card_in(page, "mql", made[26])
    card.get_by_role("link", name="Lead26").focus()
    page.keyboard.press("Tab")
    assert card.get_by_role("button", name="Accept").evaluate("el => el === document.activeElement")

    # The 15 s refresh keeps what "Show more" loaded.
    refreshed = page.locator("#board-columns").get_attribute("data-refreshed")
    page.clock.run_for(16_000)
    page.wait_for_function(
        "was => document.querySelector('#board-columns').dataset.refreshed !== was", arg=refreshed
    )
    assert page.locator('section[data-stage="mql"] article').count() == 28
