"""The lead lifecycle state machine. The only code that writes Lead.stage and Handoff.stage.

Each transition is one atomic step: a conditional UPDATE that only matches the expected current stage
(zero rows means somebody else moved it first: a conflict), plus an append-only Transition row in the
same database transaction.
"""

import heapq
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone

from leads.models import Lead, Stage
from leads.roles import SDR

from .models import Handoff, HandoffContribution, Transition

# Stages from which the scoring engine may promote a lead to MQL.
PROMOTABLE = (Stage.LEAD, Stage.RECYCLED)


class TransitionConflict(Exception):
    """The handoff is no longer where the caller thought it was (or the move is not legal from
    where it is). `current_stage` is where it really is, for the board to show."""

    def __init__(self, message: str, current_stage: str | None = None):
        super().__init__(message)
        self.current_stage = current_stage


class NotAllowed(Exception):
    """The user may not act on this handoff: another SDR's, and never theirs or unassigned (the board
    answers 404 and so never reveals it); or, as Forbidden, their role may not do this at all."""


class Forbidden(NotAllowed):
    """The user's role may not do this at all, whichever handoff it is (the board answers 403): a
    marketer on the board, an SDR reassigning, a manager claiming."""


@dataclass(frozen=True)
class Promotion:
    lead_id: int
    handoff_id: int
    assignee_id: int | None


def active_sdrs():
    return get_user_model().objects.filter(is_active=True, groups__name=SDR)


def is_active_sdr(user) -> bool:
    """Handoffs belong to active SDRs: round-robin, reassignment, claiming and accepting an
    unassigned MQL all give them only to one."""
    return active_sdrs().filter(pk=user.pk).exists()


def choose_assignee(*, strategy: str | None = None):
    """The SDR who gets the next MQL, or None when there is no active SDR.

    round_robin: the SDR whose most recent assignment is oldest (stateless, so it survives restarts
    and concurrent workers without a shared counter; "most recent" by handoff id, which keeps the
    turn order even when a bulk rescore promotes many leads with one timestamp).
    least_loaded: fewest open handoffs.
    """
    return choose_assignees(1, strategy=strategy)[0]


def choose_assignees(count: int, *, strategy: str | None = None) -> list:
    """The SDRs who get the next `count` MQLs, in order (None each when there is no active SDR):
    what `count` calls of `choose_assignee` would answer, each after the previous was assigned."""
    strategy = strategy or settings.ACCORD_ASSIGNMENT
    if count <= 0:
        return []
    sdrs = active_sdrs()
    if strategy == "least_loaded":
        loads = [
            [sdr.load, sdr.pk, sdr]
            for sdr in sdrs.annotate(load=Count("handoffs", filter=Q(handoffs__closed_at__isnull=True)))
        ]
        if not loads:
            return [None] * count
        heapq.heapify(loads)
        chosen = []
        for _ in range(count):
            entry = heapq.heappop(loads)
            chosen.append(entry[2])
            heapq.heappush(loads, [entry[0] + 1, entry[1], entry[2]])
        return chosen
    # Never-assigned SDRs first, then the one whose last assignment is oldest. A subquery per SDR
    # (newest of their handoffs, from the end of the primary key) rather than a MAX over every
    # handoff: at 130k handoffs the aggregate made each promotion cost ~70 ms.
    newest = Handoff.objects.filter(assignee=OuterRef("pk")).order_by("-id").values("id")[:1]
    turn = list(sdrs.annotate(last=Subquery(newest)).order_by(F("last").asc(nulls_first=True), "id"))
    if not turn:
        return [None] * count
    return [turn[n % len(turn)] for n in range(count)]


def sla_due(start: datetime) -> datetime:
    return start + timedelta(hours=settings.ACCORD_SLA_HOURS)


def _contributions(handoff: Handoff, breakdown) -> list[HandoffContribution]:
    """One row per rule label; a fit and a behaviour rule sharing a label are merged ("mixed")."""
    merged: dict[str, HandoffContribution] = {}
    for row in breakdown:
        label = row["label"]
        if label in merged:
            merged[label].points += row["points"]
            merged[label].rule_type, merged[label].rule_id = "mixed", None
        else:
            merged[label] = HandoffContribution(
                handoff=handoff, rule_id=row.get("rule_id"), rule_type=row.get("type", ""), label=label,
                points=row["points"],
            )
    return list(merged.values())


@transaction.atomic
def lead_promote_to_mql(
    *, lead: Lead, score: int, breakdown, model_version: str, now: datetime | None = None
) -> Promotion:
    """System transition lead|recycled → mql: opens a handoff and assigns it to an SDR."""
    if lead.stage not in PROMOTABLE:
        raise TransitionConflict(f"lead {lead.pk} is {lead.stage}, not promotable to MQL")
    promoted = leads_promote_to_mql(promotions=[(lead, score, breakdown)], model_version=model_version, now=now)
    if not promoted:
        raise TransitionConflict(f"lead {lead.pk} changed stage while it was being promoted")
    return promoted[0]


@transaction.atomic
def leads_promote_to_mql(*, promotions, model_version: str, now: datetime | None = None) -> list[Promotion]:
    """System transition lead|recycled → mql for many leads at once (a bulk rescore promotes
    thousands): per lead the same move, handoff, contributions and audit row as one promotion, in a
    constant number of statements. `promotions` are (lead, score, breakdown); leads no longer in a
    promotable stage are left alone. Assignees follow the turn order one promotion at a time would."""
    now = now or timezone.now()
    wanted = {lead.pk: (lead, score, breakdown) for lead, score, breakdown in promotions}
    # Locked, so the stage read here is the one the move starts from.
    current = dict(Lead.objects.select_for_update(of=("self",)).filter(pk__in=wanted).values_list("pk", "stage"))
    movable = [pk for pk in sorted(wanted) if current.get(pk) in PROMOTABLE]
    assignees = choose_assignees(len(movable))
    moves = defaultdict(list)
    for pk, assignee in zip(movable, assignees, strict=True):
        moves[(current[pk], assignee.pk if assignee else None)].append(pk)
    for (from_stage, owner_id), ids in moves.items():
        Lead.objects.filter(pk__in=ids, stage=from_stage).update(
            stage=Stage.MQL, stage_changed_at=now, owner_id=owner_id
        )
    handoffs = Handoff.objects.bulk_create([
        Handoff(
            lead_id=pk, stage=Stage.MQL, created_at=now, assignee=assignee, sla_due_at=sla_due(now),
            source=wanted[pk][0].source, campaign_id=wanted[pk][0].campaign_id, score_at_mql=wanted[pk][1],
            breakdown_at_mql=list(wanted[pk][2]), model_version=model_version,
        )
        for pk, assignee in zip(movable, assignees, strict=True)
    ])
    HandoffContribution.objects.bulk_create(
        [c for handoff in handoffs for c in _contributions(handoff, wanted[handoff.lead_id][2])]
    )
    Transition.objects.bulk_create([
        Transition(
            lead_id=handoff.lead_id, handoff=handoff, from_stage=current[handoff.lead_id], to_stage=Stage.MQL,
            actor=None, at=now, score=handoff.score_at_mql,
        )
        for handoff in handoffs
    ])
    for handoff in handoffs:
        lead = wanted[handoff.lead_id][0]
        lead.stage, lead.stage_changed_at, lead.owner = Stage.MQL, now, handoff.assignee
    return [Promotion(lead_id=h.lead_id, handoff_id=h.pk, assignee_id=h.assignee_id) for h in handoffs]


# --- SDR and manager actions ----------------------------------------------------------------------

# Legal moves: action → (stages it may start from, stage it goes to). Rejection's target depends
# on the reason (recycled or disqualified).
MOVES = {
    "accept": ((Stage.MQL,), Stage.SAL),
    "qualify": ((Stage.SAL,), Stage.SQL),
    "reject": ((Stage.MQL, Stage.SAL), None),
    "open_opportunity": ((Stage.SQL,), Stage.OPPORTUNITY),
    "win": ((Stage.OPPORTUNITY,), Stage.WON),
    "lose": ((Stage.OPPORTUNITY,), Stage.LOST),
}
CLOSING = {Stage.RECYCLED, Stage.DISQUALIFIED, Stage.WON, Stage.LOST}


def can_work(user, handoff: Handoff) -> bool:
    """SDRs act on handoffs assigned to them or unassigned; managers (reassign) on all."""
    if user.has_perm("handoff.reassign_handoff"):
        return True
    if not user.has_perm("handoff.work_handoff"):
        return False
    return handoff.assignee_id in (None, user.pk)


def _taken_away(user, handoff: Handoff) -> str | None:
    """Why an SDR whose board showed this handoff as theirs to work (unassigned, or theirs) can no
    longer act on it, or None if it was never theirs to see. Decided from the handoff, not from when
    the request was read, so every loser of a race for it gets the same answer."""
    if handoff.assignee_id in (None, user.pk):
        return None
    if handoff.previous_assignee_id == user.pk:
        return "A manager gave this lead to someone else; it is theirs now."
    if handoff.left_pool_at is not None:
        return "Someone else took this lead first; it is theirs now."
    return None


def check_access(user, handoff: Handoff) -> None:
    """Refuse a user who may not act on this handoff now:
    Forbidden (403) without the board permission; TransitionConflict (409) when another SDR has it
    but this user's board showed it as unassigned or theirs; NotAllowed (404) when it is another SDR's
    and never was this user's to see."""
    if not user.has_perm("handoff.work_handoff"):
        raise Forbidden(f"{user} may not act on handoffs")
    if can_work(user, handoff):
        return
    if reason := _taken_away(user, handoff):
        raise TransitionConflict(reason, current_stage=handoff.stage)
    raise NotAllowed(f"{user} may not act on handoff {handoff.pk}")


def _lost_race(actor, handoff_id: int) -> TransitionConflict:
    """The conflict for a conditional update that matched nothing: someone moved or took the handoff
    after we read it. Read again (it is committed by now) to say which."""
    handoff = Handoff.objects.get(pk=handoff_id)
    reason = _taken_away(actor, handoff) or "Someone else changed this lead a moment ago."
    return TransitionConflict(reason, current_stage=handoff.stage)


def _move(
    *, handoff_id: int, actor, action: str, to_stage: str | None = None, reason=None, note: str = "",
    handoff_fields: dict | None = None, lead_fields: dict | None = None, take_unassigned: bool = False,
    now: datetime | None = None,
) -> Handoff:
    """One transition: check legality and permission, conditional updates, audit row. Atomic.
    With take_unassigned, an active SDR moving an unassigned handoff becomes its assignee."""
    now = now or timezone.now()
    from_stages, default_to = MOVES[action]
    to_stage = to_stage or default_to
    lead_fields = dict(lead_fields or {})
    with transaction.atomic():
        handoff = Handoff.objects.select_related("lead").get(pk=handoff_id)
        check_access(actor, handoff)
        if handoff.stage not in from_stages or handoff.closed_at is not None:
            raise TransitionConflict(
                f"This lead is already {handoff.get_stage_display()}; it cannot be {action.replace('_', ' ')}ed now.",
                current_stage=handoff.stage,
            )
        from_stage = handoff.stage
        fields = {"stage": to_stage, **(handoff_fields or {})}
        if take_unassigned and handoff.assignee_id is None and is_active_sdr(actor):
            fields.update(assignee=actor, left_pool_at=now)
            lead_fields["owner"] = actor
        if handoff.first_action_at is None:
            fields["first_action_at"] = now
        if to_stage in CLOSING:
            fields["closed_at"] = now
        # The conditional UPDATE is the real check: if someone else moved it since we read it,
        # zero rows match and this request loses.
        moved = Handoff.objects.filter(
            pk=handoff.pk, stage=from_stage, closed_at__isnull=True, assignee_id=handoff.assignee_id
        ).update(**fields)
        if moved:
            moved = Lead.objects.filter(pk=handoff.lead_id, stage=from_stage).update(
                stage=to_stage, stage_changed_at=now, **lead_fields
            )
        if not moved:
            raise _lost_race(actor, handoff.pk)
        Transition.objects.create(
            lead_id=handoff.lead_id, handoff=handoff, from_stage=from_stage, to_stage=to_stage, actor=actor,
            at=now, reason=reason, note=note, score=handoff.lead.score,
        )
    handoff.refresh_from_db()
    return handoff


def handoff_accept(*, handoff_id: int, actor, now: datetime | None = None) -> Handoff:
    """MQL → SAL. An SDR who accepts an unassigned handoff takes it; a manager's accept leaves it
    unassigned (handoffs belong to SDRs; a manager gives one to an SDR with reassign)."""
    now = now or timezone.now()
    return _move(
        handoff_id=handoff_id, actor=actor, action="accept", handoff_fields={"accepted_at": now},
        take_unassigned=True, now=now,
    )


def handoff_qualify(
    *, handoff_id: int, actor, budget: str, authority: str, need: str, timing: str, note: str = "",
    now: datetime | None = None,
) -> Handoff:
    """SAL → SQL, recording BANT on the lead."""
    bant = {"bant_budget": budget, "bant_authority": authority, "bant_need": need, "bant_timing": timing}
    return _move(
        handoff_id=handoff_id, actor=actor, action="qualify", note=note,
        handoff_fields={"qualified_at": now or timezone.now()}, lead_fields=bant, now=now,
    )


def handoff_reject(*, handoff_id: int, actor, reason, note: str = "", now: datetime | None = None) -> Handoff:
    """MQL or SAL → recycled (back to marketing) or disqualified, with a reason and a note."""
    if not reason.active:
        raise ValueError(f"rejection reason {reason.code} is not active")
    to_stage = Stage.DISQUALIFIED if reason.disqualifies else Stage.RECYCLED
    outcome = Handoff.Outcome.DISQUALIFIED if reason.disqualifies else Handoff.Outcome.REJECTED
    return _move(
        handoff_id=handoff_id, actor=actor, action="reject", to_stage=to_stage, reason=reason, note=note,
        handoff_fields={"outcome": outcome, "rejection_reason": reason, "rejection_note": note}, now=now,
    )


def handoff_open_opportunity(*, handoff_id: int, actor, note: str = "", now: datetime | None = None) -> Handoff:
    """SQL → opportunity."""
    return _move(handoff_id=handoff_id, actor=actor, action="open_opportunity", note=note, now=now)


def handoff_close(*, handoff_id: int, actor, won: bool, note: str = "", now: datetime | None = None) -> Handoff:
    """Opportunity → won or lost; the episode ends."""
    outcome = Handoff.Outcome.WON if won else Handoff.Outcome.LOST
    return _move(
        handoff_id=handoff_id, actor=actor, action="win" if won else "lose", note=note,
        handoff_fields={"outcome": outcome}, now=now,
    )


@transaction.atomic
def handoff_reassign(*, handoff_id: int, actor, to_user) -> Handoff:
    """A manager gives an open handoff to another active SDR (no stage change)."""
    if not actor.has_perm("handoff.reassign_handoff"):
        raise Forbidden(f"{actor} may not reassign handoffs")
    if to_user is not None and not active_sdrs().filter(pk=to_user.pk).exists():
        raise ValueError(f"{to_user} is not an active SDR")
    handoff = Handoff.objects.select_for_update().get(pk=handoff_id)
    if handoff.closed_at is not None:
        raise TransitionConflict("This handoff is already closed.", current_stage=handoff.stage)
    changes = {"assignee": to_user}
    new_assignee_id = to_user.pk if to_user else None
    if handoff.assignee_id is None and new_assignee_id is not None:
        changes["left_pool_at"] = timezone.now()
    elif handoff.assignee_id not in (None, new_assignee_id):
        changes["previous_assignee_id"] = handoff.assignee_id  # their board may still show it
    Handoff.objects.filter(pk=handoff.pk).update(**changes)
    Lead.objects.filter(pk=handoff.lead_id).update(owner=to_user)
    handoff.refresh_from_db()
    return handoff


def handoff_claim(*, handoff_id: int, actor) -> Handoff:
    """An SDR takes an unassigned open handoff; a conditional update so two claims cannot both win.

    Only active SDRs claim: claiming makes you the assignee, and handoffs belong to SDRs (a manager
    holds work_handoff too, but gives a handoff to an SDR with reassign)."""
    if not is_active_sdr(actor):
        raise Forbidden(f"{actor} is not an active SDR; only SDRs claim handoffs")
    with transaction.atomic():
        claimed = Handoff.objects.filter(pk=handoff_id, assignee__isnull=True, closed_at__isnull=True).update(
            assignee=actor, left_pool_at=timezone.now()
        )
        handoff = Handoff.objects.get(pk=handoff_id)
        if claimed:
            Lead.objects.filter(pk=handoff.lead_id).update(owner=actor)
        elif handoff.assignee_id != actor.pk:  # already theirs (a double click): nothing to do
            check_access(actor, handoff)  # another SDR's now: 409 if it was in the pool, else 404
            # Still unassigned, so it was closed meanwhile.
            raise TransitionConflict(
                f"This lead is already {handoff.get_stage_display()}; it cannot be claimed now.",
                current_stage=handoff.stage,
            )
    return handoff
