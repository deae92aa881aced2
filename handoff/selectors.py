"""Read queries for the handoff board and the lead detail page.

Every list here is a fixed number of queries whatever the number of cards: a column's cards are one
query (`card_rows`: plain values of the handoff joined to its lead, campaign and owner, no model
instances) and everything else a card shows is computed in Python from those rows (`board_card`).
Each query reads the partial indexes of migration 0008 (docs/board.md, "Speed").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape as html_escape

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.safestring import SafeString

from leads.models import Campaign, Interaction, Lead, Stage

from .models import Handoff, Transition
from .templatetags.board_tags import OUTCOME_LABELS, SOURCE_LABELS, STAGE_LABELS, card_urls, duration, points

PAGE_SIZE = 25
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


# What an action endpoint reads of the handoff it acts on (the access check, the dialogs).
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
    "left_pool_at",
    "previous_assignee_id",
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


def _scope_q(user, filters: BoardFilters, now: datetime) -> Q:
    """The handoffs the filters select, whatever their stage: one Q, so each query is one filter()."""
    if filters.view == "closed":
        q = Q(closed_at__isnull=False, closed_at__gte=now - timedelta(days=CLOSED_DAYS))
    else:
        q = Q(closed_at__isnull=True)
    if filters.owner == Owner.MINE:
        q &= Q(assignee=user)  # within what the user may see
    elif filters.owner == Owner.UNASSIGNED:
        q &= Q(assignee__isnull=True)  # within what the user may see
    else:
        q &= visible_to(user)
    if filters.source:
        q &= Q(lead__source=filters.source)
    if filters.campaign:
        q &= Q(lead__campaign_id=filters.campaign)
    return q


def _base(user, filters: BoardFilters, now: datetime) -> QuerySet:
    """The handoffs the filters select, before the split into columns."""
    stages = [c.stage for c in filters.columns]
    return Handoff.objects.filter(_scope_q(user, filters, now), stage__in=stages)


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
    # COUNT(stage), not COUNT(id): stage and assignee are all it reads, so PostgreSQL counts the open
    # board from handoff_open_owner_idx alone (index-only) instead of visiting ~1,200 table pages.
    aggregates = {c.stage: Count("stage", filter=_column_q(c.stage, filters, now)) for c in filters.columns}
    return _base(user, filters, now).aggregate(**aggregates)


# What a card shows, read as plain values (no model instances: a board builds 75 to 150 cards on
# every 15 s refresh, and hydrating Handoff + Lead + Campaign + User objects was a third of its time).
CARD_VALUES = (
    "id",
    "lead_id",
    "stage",
    "assignee_id",
    "sla_due_at",
    "closed_at",
    "outcome",
    "rejection_note",
    "lead__email",
    "lead__first_name",
    "lead__last_name",
    "lead__job_title",
    "lead__company",
    "lead__source",
    "lead__score",
    "lead__fit_score",
    "lead__score_breakdown",
    "lead__stage_changed_at",
    "lead__campaign__name",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
)
# Only closed cards have a rejection reason: open columns leave that join out (it costs PostgreSQL
# ~0.4 ms of planning per column query).
CLOSED_CARD_VALUES = (*CARD_VALUES, "rejection_reason__label")


@dataclass(frozen=True)
class Viewer:
    """Who looks at the board, asked once per request instead of once per card (`has_perm`)."""

    pk: int
    manager: bool  # reassign_handoff: acts on every card, reassigns, never claims
    works: bool  # work_handoff

    @classmethod
    def of(cls, user) -> Viewer:
        return cls(pk=user.pk, manager=is_manager(user), works=user.has_perm("handoff.work_handoff"))

    def may_act(self, assignee_id: int | None) -> bool:
        """services.can_work for this viewer and a card's assignee."""
        return self.manager or (self.works and assignee_id in (None, self.pk))


def card_rows(qs: QuerySet, *, closed: bool = True) -> list[dict]:
    """The rows of `qs` (handoffs) with what their cards show: one query. `closed=False` when none
    of them can be closed (an open column)."""
    return list(qs.values(*(CLOSED_CARD_VALUES if closed else CARD_VALUES)))


def column_cards(
    user,
    filters: BoardFilters,
    stage: str,
    *,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    now: datetime | None = None,
) -> list[dict]:
    """One page of one column, most urgent first, as card values (see board_tags.card): one query
    (the page is a subquery)."""
    now = now or timezone.now()
    return _column_cards(
        _scope_q(user, filters, now), filters, stage, offset, limit, viewer=Viewer.of(user), now=now
    )


def _column_cards(
    scope: Q, filters: BoardFilters, stage: str, offset: int, limit: int, *, viewer: Viewer, now: datetime
) -> list[dict]:
    ordering = _ordering(stage)
    # Pick the page's ids first, from the column's queue index alone (handoff_*_queue_idx: already
    # in this order, owner included), then load those cards with their lead, campaign and owner:
    # the join touches `limit` rows, not the whole column.
    page = Handoff.objects.filter(scope & _column_q(stage, filters, now)).order_by(*ordering)
    page = page.values("pk")[offset : offset + limit]
    rows = card_rows(
        Handoff.objects.filter(pk__in=page).order_by(*ordering), closed=filters.view == "closed"
    )
    return [board_card(row, viewer=viewer, now=now) for row in rows]


def card_view(pk: int, user, now: datetime | None = None) -> dict | None:
    """One card's values (one query), as the board shows it to `user` now; None if unknown."""
    rows = card_rows(Handoff.objects.filter(pk=pk))
    if not rows:
        return None
    return board_card(rows[0], viewer=Viewer.of(user), now=now or timezone.now())


def board(user, filters: BoardFilters, now: datetime | None = None) -> list[dict]:
    """Every column of the board with its count and first cards: 1 + one query per column."""
    now = now or timezone.now()
    counts = column_counts(user, filters, now)
    scope, viewer = _scope_q(user, filters, now), Viewer.of(user)
    columns = []
    for column in filters.columns:
        limit = filters.limit(column.stage)
        cards = _column_cards(scope, filters, column.stage, 0, limit, viewer=viewer, now=now)
        total = counts[column.stage]
        columns.append(
            {
                "column": column,
                "stage": column.stage,
                "count": total,
                "cards": cards,
                "shown": len(cards),
                "more": max(0, total - len(cards)),
                "next_limit": len(cards) + PAGE_SIZE,  # "Show more" without JavaScript
            }
        )
    return columns


def campaigns_for_filter() -> list[tuple[int, str]]:
    return list(Campaign.objects.order_by("name").values_list("id", "name"))


def card(pk: int) -> Handoff | None:
    """One handoff with what an action on it reads (one query), or None. What its card shows is
    `card_view`."""
    return _cards().filter(pk=pk).first()


# --- what a card shows, computed from the loaded rows ---------------------------------------------


def sla_state(stage: str, closed_at, sla_due_at, now: datetime) -> str:
    if stage != Stage.MQL or closed_at is not None or sla_due_at is None:
        return Sla.NONE
    left = sla_due_at - now
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


def _person(first: str | None, last: str | None, username: str | None) -> str:
    return f"{first or ''} {last or ''}".strip() or username or ""


def _safe(text: str) -> SafeString:
    """Text escaped for HTML, once, here (the same escaping as Django's `escape`)."""
    return SafeString(html_escape(text))


def board_card(row: dict, *, viewer: Viewer, now: datetime) -> dict:
    """What one card shows, from a `card_rows` row: a plain dict of flags and ready-made strings,
    every one already HTML-escaped (SafeString): board_tags.board_card writes them into the card's
    markup as they are (tests/handoff/test_board_cards.py)."""
    key = SafeString(row["id"])
    stage = row["stage"]
    closed_at = row["closed_at"]
    is_open = closed_at is None
    sla = sla_state(stage, closed_at, row["sla_due_at"], now)
    sla_text = sla_icon = ""
    if sla == Sla.OVERDUE:
        sla_text, sla_icon = f"Overdue by {duration(now - row['sla_due_at'])}", "⚠"
    elif sla == Sla.DUE_SOON:
        sla_text, sla_icon = f"Due soon: {duration(row['sla_due_at'] - now)} left", "◔"
    elif sla == Sla.ON_TRACK:
        sla_text = f"SLA: {duration(row['sla_due_at'] - now)} left"
    else:
        sla = ""
    assignee_id = row["assignee_id"]
    can_act = is_open and viewer.may_act(assignee_id)
    reason = row.get("rejection_reason__label") or ""
    name = f"{row['lead__first_name']} {row['lead__last_name']}".strip()
    owner = (
        _person(row["assignee__first_name"], row["assignee__last_name"], row["assignee__username"])
        if assignee_id
        else ""
    )
    urls = card_urls()
    return {
        "id": key,
        "stage": _safe(stage),
        "stage_label": _safe(STAGE_LABELS.get(stage, stage)),
        "sla_class": SafeString(f" card-sla-{sla}" if sla else ""),
        "name": _safe(name or row["lead__email"]),
        "title": _safe(row["lead__job_title"] or "No title"),
        "company": _safe(row["lead__company"] or "No company"),
        "score": SafeString(row["lead__score"]),
        "fit": SafeString(row["lead__fit_score"]),
        "reasons": [
            (
                SafeString("neg" if r["points"] < 0 else "pos"),
                _safe(f"{points(r['points'])} {r.get('label', '')}"),
            )
            for r in top_reasons(row["lead__score_breakdown"])
        ],
        "source": _safe(SOURCE_LABELS.get(row["lead__source"], row["lead__source"])),
        "campaign": _safe(row["lead__campaign__name"] or "—"),
        "owner": _safe(owner),
        "in_stage": _safe(duration(now - row["lead__stage_changed_at"])),
        "sla": SafeString(sla),
        "sla_text": _safe(sla_text),
        "sla_icon": SafeString(sla_icon),
        "open": is_open,
        "outcome": _safe(
            f"Rejected: {reason}"
            if reason
            else OUTCOME_LABELS.get(row["outcome"]) or STAGE_LABELS.get(stage, "")
        ),
        "disqualified": stage == Stage.DISQUALIFIED,
        "note": _safe(row["rejection_note"]),
        "closed_ago": _safe("" if is_open else duration(now - closed_at)),
        "accept": can_act and stage == Stage.MQL,
        "qualify": can_act and stage == Stage.SAL,
        "reject": can_act and stage in (Stage.MQL, Stage.SAL),
        "claim": is_open and assignee_id is None and viewer.works and not viewer.manager,
        "reassign": is_open and viewer.manager,
        "lead_url": _safe(urls["lead"].format(row["lead_id"])),
        "accept_url": _safe(urls["accept"].format(key)),
        "claim_url": _safe(urls["claim"].format(key)),
        "qualify_url": _safe(urls["qualify_dialog"].format(key)),
        "reject_url": _safe(urls["reject_dialog"].format(key)),
        "reassign_url": _safe(urls["reassign_dialog"].format(key)),
    }


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
