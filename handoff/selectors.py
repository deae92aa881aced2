"""Read queries for the handoff board and the lead detail page.

Every list here is a fixed number of queries whatever the number of cards: cards are loaded with
`select_related` (lead, its campaign, the assignee, the rejection reason) and everything else a card
shows is computed in Python from those rows (see `decorate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from leads.models import Campaign, Interaction, Lead, Stage

from .models import Handoff, Transition
from .services import can_work

PAGE_SIZE = 50
MAX_LIMIT = 500  # the most cards one column renders in one response
DUE_SOON = timedelta(hours=4)
CLOSED_DAYS = 30
TIMELINE_SIZE = 100


@dataclass(frozen=True)
class Column:
    stage: str
    label: str
    hint: str


OPEN_COLUMNS = (
    Column(Stage.MQL, "MQL", "Accept or reject before the SLA runs out"),
    Column(Stage.SAL, "SAL", "Accepted: qualify with BANT or reject"),
    Column(Stage.SQL, "SQL", "Qualified: ready for an opportunity"),
)
CLOSED_COLUMNS = (
    Column(Stage.RECYCLED, "Recycled", f"Rejected back to marketing, last {CLOSED_DAYS} days"),
    Column(Stage.DISQUALIFIED, "Disqualified", f"Rejected for good, last {CLOSED_DAYS} days"),
)


class Owner:
    MINE = "mine"
    ALL = "all"
    UNASSIGNED = "unassigned"


class Sla:
    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    NONE = "none"


@dataclass
class BoardFilters:
    """The board's filters, already validated (see forms.BoardFilterForm)."""

    view: str = "open"  # "open" (MQL, SAL, SQL) or "closed" (recycled / disqualified, last 30 days)
    owner: str = Owner.ALL
    source: str = ""
    campaign: int | None = None
    sla: str = ""  # applies to the MQL column only: SAL and SQL have met their SLA
    limits: dict = field(default_factory=dict)  # stage -> cards to show (the poll keeps "Show more")

    @property
    def columns(self) -> tuple[Column, ...]:
        return CLOSED_COLUMNS if self.view == "closed" else OPEN_COLUMNS

    def limit(self, stage: str) -> int:
        return max(PAGE_SIZE, min(MAX_LIMIT, self.limits.get(stage) or PAGE_SIZE))


def is_manager(user) -> bool:
    return user.has_perm("handoff.reassign_handoff")


def visible_to(user) -> Q:
    """Handoffs a user may see on the board: managers all; SDRs theirs and unassigned ones (another
    SDR's cards are not shown, so the board never reveals what the action endpoints would 404)."""
    if is_manager(user):
        return Q()
    return Q(assignee=user) | Q(assignee__isnull=True)


CARD_RELATED = ("lead", "lead__campaign", "assignee", "rejection_reason")


# What a card shows (see templatetags.board_tags.card); loading only these keeps 150 cards cheap.
CARD_FIELDS = (
    "id",
    "lead_id",
    "stage",
    "created_at",
    "assignee_id",
    "sla_due_at",
    "accepted_at",
    "qualified_at",
    "closed_at",
    "outcome",
    "rejection_reason_id",
    "rejection_note",
    "lead__id",
    "lead__email",
    "lead__first_name",
    "lead__last_name",
    "lead__job_title",
    "lead__company",
    "lead__source",
    "lead__campaign_id",
    "lead__score",
    "lead__fit_score",
    "lead__score_breakdown",
    "lead__stage_changed_at",
    "lead__campaign__id",
    "lead__campaign__name",
    "assignee__id",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
    "rejection_reason__id",
    "rejection_reason__label",
)


def _cards() -> QuerySet:
    return Handoff.objects.select_related(*CARD_RELATED).only(*CARD_FIELDS)


def _sla_q(sla: str, now: datetime) -> Q:
    if sla == Sla.OVERDUE:
        return Q(sla_due_at__lt=now)
    if sla == Sla.DUE_SOON:
        return Q(sla_due_at__gte=now, sla_due_at__lt=now + DUE_SOON)
    if sla == Sla.ON_TRACK:
        return Q(sla_due_at__gte=now + DUE_SOON)
    return Q()


def _base(user, filters: BoardFilters, now: datetime) -> QuerySet:
    """The handoffs the filters select, before the split into columns."""
    qs = Handoff.objects.filter(visible_to(user))
    if filters.view == "closed":
        qs = qs.filter(
            closed_at__isnull=False,
            closed_at__gte=now - timedelta(days=CLOSED_DAYS),
            stage__in=[c.stage for c in CLOSED_COLUMNS],
        )
    else:
        qs = qs.filter(closed_at__isnull=True, stage__in=[c.stage for c in OPEN_COLUMNS])
    if filters.owner == Owner.MINE:
        qs = qs.filter(assignee=user)
    elif filters.owner == Owner.UNASSIGNED:
        qs = qs.filter(assignee__isnull=True)
    if filters.source:
        qs = qs.filter(lead__source=filters.source)
    if filters.campaign:
        qs = qs.filter(lead__campaign_id=filters.campaign)
    return qs


def _column_q(stage: str, filters: BoardFilters, now: datetime) -> Q:
    q = Q(stage=stage)
    if stage == Stage.MQL and filters.sla:
        q &= _sla_q(filters.sla, now)
    return q


def _ordering(stage: str) -> tuple[str, ...]:
    """Most urgent first, on the handoff's own columns so the page is picked before any join."""
    if stage == Stage.MQL:
        return ("sla_due_at", "created_at", "id")  # soonest SLA first
    if stage == Stage.SAL:
        return ("accepted_at", "id")  # oldest in stage first (accepted_at = when it became a SAL)
    if stage == Stage.SQL:
        return ("qualified_at", "id")
    return ("-closed_at", "-id")  # recycled / disqualified: latest feedback first


def column_counts(user, filters: BoardFilters, now: datetime | None = None) -> dict[str, int]:
    """Cards per column under the filters: one query."""
    now = now or timezone.now()
    aggregates = {c.stage: Count("id", filter=_column_q(c.stage, filters, now)) for c in filters.columns}
    return _base(user, filters, now).aggregate(**aggregates)


def column_cards(
    user,
    filters: BoardFilters,
    stage: str,
    *,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    now: datetime | None = None,
) -> list[Handoff]:
    """One page of one column, most urgent first: one query (the page is a subquery)."""
    now = now or timezone.now()
    ordering = _ordering(stage)
    # Pick the page's ids first (sorting small handoff rows only), then load those cards with their
    # lead, campaign and owner: the join touches `limit` rows, not the whole column.
    page = _base(user, filters, now).filter(_column_q(stage, filters, now)).order_by(*ordering)
    page = page.values("pk")[offset : offset + limit]
    rows = list(_cards().filter(pk__in=page).order_by(*ordering))
    return decorate(rows, user=user, now=now)


def board(user, filters: BoardFilters, now: datetime | None = None) -> list[dict]:
    """Every column of the board with its count and first cards: 1 + one query per column."""
    now = now or timezone.now()
    counts = column_counts(user, filters, now)
    columns = []
    for column in filters.columns:
        limit = filters.limit(column.stage)
        cards = column_cards(user, filters, column.stage, limit=limit, now=now)
        total = counts[column.stage]
        columns.append(
            {
                "column": column,
                "stage": column.stage,
                "count": total,
                "cards": cards,
                "shown": len(cards),
                "more": max(0, total - len(cards)),
            }
        )
    return columns


def campaigns_for_filter() -> list[tuple[int, str]]:
    return list(Campaign.objects.order_by("name").values_list("id", "name"))


def card(pk: int) -> Handoff | None:
    """One handoff with everything its card shows (one query), or None."""
    return _cards().filter(pk=pk).first()


# --- what a card shows, computed from the loaded rows ---------------------------------------------


def sla_state(handoff: Handoff, now: datetime) -> str:
    if handoff.stage != Stage.MQL or handoff.closed_at is not None or handoff.sla_due_at is None:
        return Sla.NONE
    left = handoff.sla_due_at - now
    if left < timedelta(0):
        return Sla.OVERDUE
    if left < DUE_SOON:
        return Sla.DUE_SOON
    return Sla.ON_TRACK


def top_reasons(breakdown, n: int = 3) -> list[dict]:
    """The n rules that moved the score most (the engine stores them largest first)."""
    rows = [r for r in (breakdown or []) if isinstance(r, dict) and r.get("points")]
    rows.sort(key=lambda r: -abs(r["points"]))
    return rows[:n]


def decorate(handoffs: list[Handoff], *, user, now: datetime) -> list[Handoff]:
    """Attach what the card template shows; no queries (has_perm is cached per user)."""
    manager = is_manager(user)
    for h in handoffs:
        h.sla_state = sla_state(h, now)
        h.sla_left = (h.sla_due_at - now) if h.sla_due_at else None
        h.sla_overdue_by = (now - h.sla_due_at) if h.sla_due_at else None
        h.in_stage = now - h.lead.stage_changed_at
        h.closed_ago = (now - h.closed_at) if h.closed_at else None
        h.top_reasons = top_reasons(h.lead.score_breakdown)
        h.is_open = h.closed_at is None
        h.can_act = h.is_open and can_work(user, h)
        h.can_claim = (
            h.is_open and h.assignee_id is None and not manager and user.has_perm("handoff.work_handoff")
        )
        h.can_reassign = h.is_open and manager
    return handoffs


def lead_bant(lead_id: int) -> dict:
    """The lead's BANT answers, keyed like the qualify form (one query)."""
    row = Lead.objects.filter(pk=lead_id).values("bant_budget", "bant_authority", "bant_need", "bant_timing")
    return {key.removeprefix("bant_"): value for key, value in (row.first() or {}).items()}


# --- lead detail -----------------------------------------------------------------------------------


def can_view_lead(user, lead: Lead) -> bool:
    """Managers and marketers read every lead; SDRs the leads of handoffs that are (or were) theirs,
    that are open and unassigned, or that they acted on (e.g. rejected while unassigned); everybody
    else none."""
    if not user.has_perm("leads.view_lead"):
        return False
    if is_manager(user) or not user.has_perm("handoff.work_handoff"):
        return True
    return lead.handoffs.filter(
        Q(assignee=user) | Q(assignee__isnull=True, closed_at__isnull=True) | Q(transitions__actor=user)
    ).exists()


def lead_for_detail(pk: int) -> Lead | None:
    return Lead.objects.select_related("campaign", "owner").filter(pk=pk).first()


@dataclass
class LeadDetail:
    lead: Lead
    breakdown: list
    interactions: list
    interactions_total: int
    transitions: list


def lead_detail(lead: Lead) -> LeadDetail:
    """Everything the lead page shows: two or three queries whatever the history's length."""
    interactions = list(
        Interaction.objects.filter(lead=lead)
        .select_related("kind")
        .order_by("-occurred_at", "-id")[:TIMELINE_SIZE]
    )
    total = (
        len(interactions)
        if len(interactions) < TIMELINE_SIZE
        else Interaction.objects.filter(lead=lead).count()
    )
    transitions = list(
        Transition.objects.filter(lead=lead).select_related("actor", "reason").order_by("-at", "-id")
    )
    breakdown = [r for r in (lead.score_breakdown or []) if isinstance(r, dict)]
    return LeadDetail(lead, breakdown, interactions, total, transitions)
