"""The state machine: every legal move, every illegal one, conflicts, permissions, audit rows."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from handoff import services
from handoff.models import Handoff, HandoffContribution, RejectionReason, Transition
from leads.models import Lead
from tests.conftest import skip_or_fail
from tests.handoff.factories import HandoffFactory
from tests.leads.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def handoff(sdr):
    return HandoffFactory(assignee=sdr, lead=LeadFactory(stage="mql", owner=sdr, score=72))


def reason(code):
    return RejectionReason.objects.get(code=code)


def stages(handoff):
    handoff.refresh_from_db()
    return handoff.stage, Lead.objects.get(pk=handoff.lead_id).stage


def audit(handoff):
    return list(Transition.objects.filter(handoff=handoff).values_list("from_stage", "to_stage", "actor__username"))


def test_accept_moves_mql_to_sal_and_writes_an_audit_row(handoff, sdr):
    services.handoff_accept(handoff_id=handoff.pk, actor=sdr)
    assert stages(handoff) == ("sal", "sal")
    assert handoff.accepted_at is not None
    assert audit(handoff) == [("mql", "sal", "sdr")]
    assert Transition.objects.get(handoff=handoff).score == 72


def test_qualify_moves_sal_to_sql_and_records_bant(handoff, sdr):
    services.handoff_accept(handoff_id=handoff.pk, actor=sdr)
    services.handoff_qualify(
        handoff_id=handoff.pk, actor=sdr, budget="40k approved", authority="VP signs", need="Replace HubSpot",
        timing="Q1",
    )
    assert stages(handoff) == ("sql", "sql")
    lead = Lead.objects.get(pk=handoff.lead_id)
    assert (lead.bant_budget, lead.bant_authority, lead.bant_need, lead.bant_timing) == (
        "40k approved", "VP signs", "Replace HubSpot", "Q1",
    )
    assert audit(handoff)[-1] == ("sal", "sql", "sdr")


@pytest.mark.parametrize("start", ["mql", "sal"])
def test_reject_recycles_with_reason_and_note_and_closes_the_episode(handoff, sdr, start):
    if start == "sal":
        services.handoff_accept(handoff_id=handoff.pk, actor=sdr)
    services.handoff_reject(handoff_id=handoff.pk, actor=sdr, reason=reason("no_budget"), note="Frozen till May")
    assert stages(handoff) == ("recycled", "recycled")
    assert (handoff.outcome, handoff.rejection_reason.code, handoff.rejection_note) == ("rejected", "no_budget", "Frozen till May")
    assert handoff.closed_at is not None
    last = Transition.objects.filter(handoff=handoff).last()
    assert (last.to_stage, last.reason.code, last.note) == ("recycled", "no_budget", "Frozen till May")


def test_a_disqualifying_reason_disqualifies(handoff, sdr):
    services.handoff_reject(handoff_id=handoff.pk, actor=sdr, reason=reason("competitor"))
    assert stages(handoff) == ("disqualified", "disqualified")
    assert handoff.outcome == "disqualified"


def test_sql_goes_to_opportunity_then_won_or_lost(sdr):
    for won, final in ((True, "won"), (False, "lost")):
        h = HandoffFactory(assignee=sdr, lead=LeadFactory(stage="mql"))
        services.handoff_accept(handoff_id=h.pk, actor=sdr)
        services.handoff_qualify(handoff_id=h.pk, actor=sdr, budget="b", authority="a", need="n", timing="t")
        services.handoff_open_opportunity(handoff_id=h.pk, actor=sdr)
        assert stages(h) == ("opportunity", "opportunity")
        services.handoff_close(handoff_id=h.pk, actor=sdr, won=won)
        assert stages(h) == (final, final)
        assert h.outcome == final and h.closed_at is not None
        assert [t[1] for t in audit(h)] == ["sal", "sql", "opportunity", final]


ILLEGAL = [
    ("mql", "qualify"), ("mql", "open_opportunity"), ("mql", "win"),
    ("sal", "accept"), ("sal", "open_opportunity"), ("sal", "lose"),
    ("sql", "accept"), ("sql", "reject"), ("sql", "qualify"), ("sql", "win"),
    ("opportunity", "accept"), ("opportunity", "reject"), ("opportunity", "open_opportunity"),
]


def act(action, handoff, user):
    calls = {
        "accept": lambda: services.handoff_accept(handoff_id=handoff.pk, actor=user),
        "qualify": lambda: services.handoff_qualify(handoff_id=handoff.pk, actor=user, budget="", authority="", need="", timing=""),
        "reject": lambda: services.handoff_reject(handoff_id=handoff.pk, actor=user, reason=reason("no_need")),
        "open_opportunity": lambda: services.handoff_open_opportunity(handoff_id=handoff.pk, actor=user),
        "win": lambda: services.handoff_close(handoff_id=handoff.pk, actor=user, won=True),
        "lose": lambda: services.handoff_close(handoff_id=handoff.pk, actor=user, won=False),
    }
    return calls[action]()


@pytest.mark.parametrize("stage, action", ILLEGAL)
def test_an_illegal_move_is_a_conflict_and_changes_nothing(sdr, stage, action):
    h = HandoffFactory(assignee=sdr, stage=stage, lead=LeadFactory(stage=stage))
    with pytest.raises(services.TransitionConflict) as err:
        act(action, h, sdr)
    assert err.value.current_stage == stage
    assert stages(h) == (stage, stage)
    assert not Transition.objects.exists()


@pytest.mark.parametrize("final", ["recycled", "disqualified", "won", "lost"])
def test_a_closed_episode_takes_no_more_moves(sdr, final):
    h = HandoffFactory(assignee=sdr, stage=final, lead=LeadFactory(stage=final), closed_at="2026-01-01T00:00Z")
    for action in ("accept", "qualify", "reject", "open_opportunity", "win"):
        with pytest.raises(services.TransitionConflict):
            act(action, h, sdr)
    assert not Transition.objects.exists()


def test_another_sdrs_handoff_is_not_allowed(handoff, sdr2):
    with pytest.raises(services.NotAllowed):
        services.handoff_accept(handoff_id=handoff.pk, actor=sdr2)
    assert stages(handoff) == ("mql", "mql")


def test_a_marketer_may_not_act_on_handoffs(handoff, marketer):
    with pytest.raises(services.NotAllowed):
        services.handoff_accept(handoff_id=handoff.pk, actor=marketer)
    assert not Transition.objects.exists()


def test_a_manager_may_act_on_any_handoff_and_reassign(handoff, manager, sdr2):
    services.handoff_reassign(handoff_id=handoff.pk, actor=manager, to_user=sdr2)
    handoff.refresh_from_db()
    assert handoff.assignee == sdr2 and Lead.objects.get(pk=handoff.lead_id).owner == sdr2
    services.handoff_accept(handoff_id=handoff.pk, actor=manager)
    assert stages(handoff) == ("sal", "sal")


def test_an_sdr_may_not_reassign(handoff, sdr, sdr2):
    with pytest.raises(services.NotAllowed):
        services.handoff_reassign(handoff_id=handoff.pk, actor=sdr, to_user=sdr2)


def test_accepting_an_unassigned_handoff_claims_it(sdr2):
    h = HandoffFactory(assignee=None)
    services.handoff_accept(handoff_id=h.pk, actor=sdr2)
    h.refresh_from_db()
    assert h.assignee == sdr2 and Lead.objects.get(pk=h.lead_id).owner == sdr2


def test_only_one_of_two_claims_wins(sdr, sdr2):
    h = HandoffFactory(assignee=None)
    services.handoff_claim(handoff_id=h.pk, actor=sdr)
    with pytest.raises(services.TransitionConflict):
        services.handoff_claim(handoff_id=h.pk, actor=sdr2)
    h.refresh_from_db()
    assert h.assignee == sdr


def test_a_manager_may_not_claim_a_handoff(manager):
    """Claiming makes you the assignee, and handoffs belong to SDRs: a manager reassigns instead."""
    h = HandoffFactory(assignee=None)
    with pytest.raises(services.Forbidden):
        services.handoff_claim(handoff_id=h.pk, actor=manager)
    h.refresh_from_db()
    assert h.assignee_id is None and Lead.objects.get(pk=h.lead_id).owner_id is None


def test_a_managers_accept_of_an_unassigned_mql_leaves_it_unassigned(manager):
    h = HandoffFactory(assignee=None)
    services.handoff_accept(handoff_id=h.pk, actor=manager)
    h.refresh_from_db()
    assert stages(h) == ("sal", "sal")
    assert h.assignee_id is None and Lead.objects.get(pk=h.lead_id).owner_id is None
    assert audit(h) == [("mql", "sal", "manager")]


def test_an_inactive_reason_cannot_be_used(handoff, sdr):
    r = reason("bad_timing")
    r.active = False
    r.save()
    with pytest.raises(ValueError):
        services.handoff_reject(handoff_id=handoff.pk, actor=sdr, reason=r)


def test_round_robin_gives_the_next_mql_to_the_longest_waiting_sdr(sdr, sdr2):
    HandoffFactory(assignee=sdr)
    assert services.choose_assignee(strategy="round_robin") == sdr2
    HandoffFactory(assignee=sdr2)
    assert services.choose_assignee(strategy="round_robin") == sdr


def test_least_loaded_gives_the_next_mql_to_the_sdr_with_fewest_open_handoffs(sdr, sdr2):
    HandoffFactory(assignee=sdr2)
    HandoffFactory(assignee=sdr2)
    HandoffFactory(assignee=sdr)
    assert services.choose_assignee(strategy="least_loaded") == sdr


def test_promoting_many_leads_at_once_is_promoting_them_one_by_one(sdr, sdr2, settings):
    """A bulk rescore promotes its leads together: a handoff, contributions and an audit row each,
    assignees in the round-robin turn, and leads that moved meanwhile left alone."""
    settings.ACCORD_ASSIGNMENT = "round_robin"
    HandoffFactory(assignee=sdr)  # sdr2 has waited longest
    leads = [LeadFactory(stage="lead"), LeadFactory(stage="recycled"), LeadFactory(stage="lead")]
    taken = LeadFactory(stage="lead")
    Lead.objects.filter(pk=taken.pk).update(stage="sal")  # moved since the caller read it
    breakdown = [{"rule_id": 1, "type": "fit", "label": "VP", "points": 60.0}]

    promoted = services.leads_promote_to_mql(
        promotions=[(lead, 60 + n, breakdown) for n, lead in enumerate([*leads, taken])], model_version="M v1"
    )

    assert [p.lead_id for p in promoted] == [lead.pk for lead in leads]
    assert [p.assignee_id for p in promoted] == [sdr2.pk, sdr.pk, sdr2.pk]
    assert [Lead.objects.get(pk=lead.pk).stage for lead in [*leads, taken]] == ["mql", "mql", "mql", "sal"]
    assert [Lead.objects.get(pk=lead.pk).owner_id for lead in leads] == [sdr2.pk, sdr.pk, sdr2.pk]
    assert list(Transition.objects.filter(lead__in=leads).order_by("lead_id").values_list("from_stage", "score")) == [
        ("lead", 60), ("recycled", 61), ("lead", 62)
    ]
    assert HandoffContribution.objects.filter(handoff__lead__in=leads, label="VP").count() == 3
    assert services.choose_assignee() == sdr  # the turn goes on from there


def test_least_loaded_spreads_a_batch_over_the_least_loaded(sdr, sdr2):
    HandoffFactory(assignee=sdr2)
    HandoffFactory(assignee=sdr2)
    assert services.choose_assignees(4, strategy="least_loaded") == [sdr, sdr, sdr, sdr2]


def test_inactive_sdrs_get_no_mqls(sdr):
    sdr.is_active = False
    sdr.save()
    assert services.choose_assignee() is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_many_sdrs_accepting_one_handoff_at_once_give_exactly_one_success():
    if connection.vendor != "postgresql":
        skip_or_fail("the concurrency test needs PostgreSQL (row locks); SQLite serialises writers")
    manager = UserFactory(username="boss", role="Manager")
    h = HandoffFactory(assignee=None)
    results, barrier = [], threading.Barrier(12)

    def accept():
        try:
            barrier.wait()
            services.handoff_accept(handoff_id=h.pk, actor=manager)
            results.append("ok")
        except services.TransitionConflict:
            results.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == ["conflict"] * 11 + ["ok"]
    assert Transition.objects.filter(handoff=h).count() == 1
    assert stages(h) == ("sal", "sal")


TAKEN = "Someone else took this lead first; it is theirs now."


def _act(action, handoff_id, user):
    return {
        "accept": lambda: services.handoff_accept(handoff_id=handoff_id, actor=user),
        "reject": lambda: services.handoff_reject(handoff_id=handoff_id, actor=user, reason=reason("no_need")),
        "qualify": lambda: services.handoff_qualify(
            handoff_id=handoff_id, actor=user, budget="", authority="", need="", timing=""
        ),
        "claim": lambda: services.handoff_claim(handoff_id=handoff_id, actor=user),
    }[action]()


@pytest.mark.parametrize("action", ["accept", "reject", "qualify", "claim"])
def test_an_sdr_who_lost_an_unassigned_handoff_gets_a_conflict_not_a_refusal(sdr, sdr2, action):
    """The pool is every SDR's: once another SDR took it, acting on it is a conflict (409), never
    "not yours" (404), however late the request comes."""
    h = HandoffFactory(assignee=None)
    services.handoff_claim(handoff_id=h.pk, actor=sdr2)
    with pytest.raises(services.TransitionConflict, match=TAKEN) as conflict:
        _act(action, h.pk, sdr)
    assert conflict.value.current_stage == "mql"
    h.refresh_from_db()
    assert (h.assignee_id, stages(h), audit(h)) == (sdr2.pk, ("mql", "mql"), [])


def test_taking_an_unassigned_handoff_records_when_it_left_the_pool(sdr, sdr2, manager):
    claimed, accepted, given = (HandoffFactory(assignee=None) for _ in range(3))
    services.handoff_claim(handoff_id=claimed.pk, actor=sdr)
    services.handoff_accept(handoff_id=accepted.pk, actor=sdr)
    services.handoff_reassign(handoff_id=given.pk, actor=manager, to_user=sdr2)
    for h in (claimed, accepted, given):
        h.refresh_from_db()
        assert h.left_pool_at is not None
    assert HandoffFactory(assignee=sdr).left_pool_at is None


def test_an_sdr_whose_handoff_a_manager_gave_away_gets_a_conflict(handoff, sdr, sdr2, manager):
    services.handoff_reassign(handoff_id=handoff.pk, actor=manager, to_user=sdr2)
    with pytest.raises(services.TransitionConflict, match="A manager gave this lead to someone else"):
        services.handoff_accept(handoff_id=handoff.pk, actor=sdr)
    assert stages(handoff) == ("mql", "mql")


def test_a_handoff_that_was_always_another_sdrs_stays_not_allowed(handoff, sdr2, manager):
    """Never unassigned, never sdr2's: "not yours" (404 on the board), not a conflict that would
    reveal it — also after it moved on."""
    services.handoff_accept(handoff_id=handoff.pk, actor=manager)
    for action in ("accept", "reject", "qualify", "claim"):
        with pytest.raises(services.NotAllowed) as refused:
            _act(action, handoff.pk, sdr2)
        assert type(refused.value) is services.NotAllowed, "not Forbidden: the role is fine"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("action", ["accept", "reject"])
def test_an_sdr_overtaken_inside_the_state_machine_gets_the_same_conflict(monkeypatch, action):
    """The last moment to lose: the state machine has read the handoff (still unassigned) and checked
    access; another SDR's claim commits before its conditional update. Zero rows match, and the
    answer is the same conflict as for any later request."""
    if connection.vendor != "postgresql":
        skip_or_fail("the other SDR's claim must commit on its own connection meanwhile (PostgreSQL)")
    loser, winner = UserFactory(username="slow", role="SDR"), UserFactory(username="fast", role="SDR")
    h = HandoffFactory(assignee=None)
    real_check = services.check_access

    def check_then_lose(user, handoff):
        real_check(user, handoff)
        if user == loser:
            other = threading.Thread(target=_claim_on_own_connection, args=(h.pk, winner))
            other.start()
            other.join()

    monkeypatch.setattr(services, "check_access", check_then_lose)
    with pytest.raises(services.TransitionConflict, match=TAKEN):
        _act(action, h.pk, loser)
    h.refresh_from_db()
    assert (h.assignee_id, stages(h), audit(h)) == (winner.pk, ("mql", "mql"), [])


def _claim_on_own_connection(handoff_id, user):
    try:
        services.handoff_claim(handoff_id=handoff_id, actor=user)
    finally:
        connection.close()


def test_the_first_sdr_action_is_recorded_once_for_speed_to_lead(handoff, sdr):
    services.handoff_accept(handoff_id=handoff.pk, actor=sdr, now=handoff.created_at + timedelta(hours=2))
    services.handoff_qualify(handoff_id=handoff.pk, actor=sdr, budget="", authority="", need="", timing="")
    handoff.refresh_from_db()
    assert handoff.first_action_at == handoff.created_at + timedelta(hours=2)


def test_promotion_records_each_rules_contribution(sdr):
    lead = LeadFactory(stage="lead")
    breakdown = [
        {"rule_id": 7, "type": "behavior", "label": "Demo request", "points": 40.0},
        {"rule_id": 3, "type": "fit", "label": "VP title", "points": 20.0},
    ]
    promotion = services.lead_promote_to_mql(lead=lead, score=60, breakdown=breakdown, model_version="M v1")
    rows = HandoffContribution.objects.filter(handoff_id=promotion.handoff_id).order_by("rule_id")
    assert [(r.rule_id, r.rule_type, r.label, r.points) for r in rows] == [
        (3, "fit", "VP title", 20.0), (7, "behavior", "Demo request", 40.0),
    ]
