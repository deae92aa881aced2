"""The lead lifecycle state machine. The only code that writes Lead.stage and Handoff.stage.

Each transition is one atomic step: a conditional UPDATE that only matches the expected current stage
(zero rows means somebody else moved it first: a conflict), plus an append-only Transition row in the
same database transaction.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from leads.models import Lead, Stage
from leads.roles import SDR

from .models import Handoff, Transition

# Stages from which the scoring engine may promote a lead to MQL.
PROMOTABLE = (Stage.LEAD, Stage.RECYCLED)


class TransitionConflict(Exception):
    """The lead is no longer where the caller thought it was."""


@dataclass(frozen=True)
class Promotion:
    lead_id: int
    handoff_id: int
    assignee_id: int | None


def active_sdrs():
    return get_user_model().objects.filter(is_active=True, groups__name=SDR)


def choose_assignee(*, strategy: str | None = None):
    """The SDR who gets the next MQL, or None when there is no active SDR.

    round_robin: the SDR whose most recent assignment is oldest (stateless, so it survives restarts
    and concurrent workers without a shared counter). least_loaded: fewest open handoffs.
    """
    strategy = strategy or settings.ACCORD_ASSIGNMENT
    sdrs = active_sdrs()
    if strategy == "least_loaded":
        sdrs = sdrs.annotate(
            load=Count("handoffs", filter=Q(handoffs__closed_at__isnull=True))
        ).order_by("load", "id")
    else:
        # Never-assigned SDRs first, then the one whose last assignment is oldest.
        sdrs = sdrs.annotate(last=Max("handoffs__created_at")).order_by(
            F("last").asc(nulls_first=True), "id"
        )
    return sdrs.first()


def sla_due(start: datetime) -> datetime:
    return start + timedelta(hours=settings.ACCORD_SLA_HOURS)


@transaction.atomic
def lead_promote_to_mql(
    *, lead: Lead, score: int, breakdown, model_version: str, now: datetime | None = None
) -> Promotion:
    """System transition lead|recycled → mql: opens a handoff and assigns it to an SDR."""
    now = now or timezone.now()
    from_stage = lead.stage
    if from_stage not in PROMOTABLE:
        raise TransitionConflict(f"lead {lead.pk} is {from_stage}, not promotable to MQL")
    assignee = choose_assignee()
    moved = Lead.objects.filter(pk=lead.pk, stage=from_stage).update(
        stage=Stage.MQL, stage_changed_at=now, owner=assignee
    )
    if not moved:
        raise TransitionConflict(f"lead {lead.pk} changed stage while it was being promoted")
    handoff = Handoff.objects.create(
        lead=lead,
        stage=Stage.MQL,
        created_at=now,
        assignee=assignee,
        sla_due_at=sla_due(now),
        score_at_mql=score,
        breakdown_at_mql=list(breakdown),
        model_version=model_version,
    )
    Transition.objects.create(
        lead=lead, handoff=handoff, from_stage=from_stage, to_stage=Stage.MQL, actor=None, at=now, score=score
    )
    lead.stage, lead.stage_changed_at, lead.owner = Stage.MQL, now, assignee
    return Promotion(lead_id=lead.pk, handoff_id=handoff.pk, assignee_id=assignee.pk if assignee else None)
