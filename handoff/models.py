from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils import timezone

from leads.models import Campaign, Lead, Source, Stage


class RejectionReason(models.Model):
    code = models.SlugField(max_length=50, unique=True)
    label = models.CharField(max_length=100)
    active = models.BooleanField(default=True, help_text="Inactive reasons are hidden on the board.")
    disqualifies = models.BooleanField(
        default=False,
        help_text="Rejecting with this reason disqualifies the lead instead of recycling it.",
    )

    class Meta:
        ordering = ["label"]

    def __str__(self):
        return self.label


class Handoff(models.Model):
    """One MQL episode of a lead, from promotion to its outcome."""

    class Outcome(models.TextChoices):
        REJECTED = "rejected", "Rejected (recycled)"
        DISQUALIFIED = "disqualified", "Disqualified"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="handoffs")
    # Mirrors the lead's stage while the episode is open; written only by handoff.services.
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.MQL)
    created_at = models.DateTimeField(default=timezone.now, help_text="When the lead became an MQL.")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="handoffs",
    )
    # Who else could see the card before its current assignee had it: an SDR acting from a board that
    # still shows it is told "someone else has it now" (409), not "no such handoff" (404).
    left_pool_at = models.DateTimeField(
        null=True, blank=True, help_text="When it stopped being unassigned (claimed, accepted or reassigned)."
    )
    previous_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The SDR a manager last reassigned it away from.",
    )
    sla_due_at = models.DateTimeField(null=True, blank=True)
    # The SDR's first accept or reject: speed-to-lead and SLA compliance are measured to it.
    first_action_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    qualified_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    rejection_reason = models.ForeignKey(
        RejectionReason, null=True, blank=True, on_delete=models.PROTECT, related_name="handoffs"
    )
    rejection_note = models.TextField(blank=True)
    # Attribution as it was when the lead became an MQL: reports group by these without joining the
    # (much larger) lead table, and a later edit of the lead does not rewrite history.
    source = models.CharField(max_length=20, choices=Source.choices, blank=True)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="handoffs"
    )
    score_at_mql = models.IntegerField(default=0)
    breakdown_at_mql = models.JSONField(default=list, blank=True)
    model_version = models.CharField(max_length=100, blank=True, help_text="Scoring model at MQL time.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A lead has at most one open episode.
            models.UniqueConstraint(
                fields=["lead"], condition=models.Q(closed_at__isnull=True), name="one_open_handoff_per_lead"
            ),
        ]
        indexes = [
            # The board: open handoffs by stage, oldest first.
            models.Index(
                fields=["stage", "created_at"],
                name="handoff_open_stage_idx",
                condition=models.Q(closed_at__isnull=True),
            ),
            # The MQL column: open handoffs by SLA urgency.
            models.Index(
                fields=["stage", "sla_due_at"],
                name="handoff_open_sla_idx",
                condition=models.Q(closed_at__isnull=True),
            ),
            # The board's recycled/disqualified view: recently closed episodes.
            models.Index(fields=["closed_at"], name="handoff_closed_idx", condition=models.Q(closed_at__isnull=False)),
            # Board filter "mine" and per-SDR reports.
            models.Index(fields=["assignee", "stage"], name="handoff_assignee_stage_idx"),
            # The board's column counts, from the index alone (index-only scan, whatever the filter
            # on the owner: mine, unassigned, mine + unassigned, all).
            models.Index(
                fields=["stage", "assignee"],
                name="handoff_open_owner_idx",
                condition=models.Q(closed_at__isnull=True),
            ),
            # One queue per open column, in the board's order (most urgent first), with the owner
            # alongside: a column's page is the first entries of its queue, read from the index alone.
            models.Index(
                fields=["sla_due_at", "created_at", "id"],
                include=["assignee"],
                name="handoff_mql_queue_idx",
                condition=models.Q(closed_at__isnull=True, stage="mql"),
            ),
            models.Index(
                fields=["accepted_at", "id"],
                include=["assignee"],
                name="handoff_sal_queue_idx",
                condition=models.Q(closed_at__isnull=True, stage="sal"),
            ),
            models.Index(
                fields=["qualified_at", "id"],
                include=["assignee"],
                name="handoff_sql_queue_idx",
                condition=models.Q(closed_at__isnull=True, stage="sql"),
            ),
            # The board's recycled / disqualified view: each column newest first, owner included.
            models.Index(
                fields=["stage", "closed_at", "id"],
                include=["assignee"],
                name="handoff_rejected_idx",
                condition=models.Q(closed_at__isnull=False, stage__in=["recycled", "disqualified"]),
            ),
            # Reports filter by MQL date (and model version).
            models.Index(fields=["created_at"], name="handoff_created_idx"),
            models.Index(fields=["model_version", "created_at"], name="handoff_version_created_idx"),
        ]
        permissions = [
            ("work_handoff", "Can accept, qualify and reject handoffs on the board"),
            ("reassign_handoff", "Can reassign handoffs to another SDR"),
            ("view_reports", "Can view alignment reports"),
        ]

    def __str__(self):
        return f"{self.lead} ({self.get_stage_display()})"


class HandoffContribution(models.Model):
    """One scoring rule's share of a lead's score at the moment it became an MQL.

    Written once with the handoff; the rule-effectiveness report joins on it instead of digging
    through JSON (which would also differ between PostgreSQL and SQLite)."""

    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="contributions")
    rule_id = models.IntegerField(null=True, blank=True, help_text="FitRule or BehaviorRule id.")
    rule_type = models.CharField(max_length=10)  # "fit" or "behavior"
    label = models.CharField(max_length=100)
    points = models.FloatField()

    class Meta:
        constraints = [
            # One row per rule label and handoff (same-label rules are merged when written), so the
            # rule report counts handoffs without DISTINCT.
            models.UniqueConstraint(fields=["handoff", "label"], name="one_contribution_per_label"),
        ]
        indexes = [models.Index(fields=["label", "handoff"], name="contribution_label_idx")]

    def __str__(self):
        return f"{self.label}: {self.points:+g}"


APPEND_ONLY = "Transitions are append-only and cannot be {}."


class TransitionQuerySet(models.QuerySet):
    """No bulk edit or delete either. Behind this, the database itself refuses UPDATE and (on
    PostgreSQL) DELETE on the table: triggers from migration 0007, for paths that skip the ORM."""

    def update(self, **kwargs):
        raise ValueError(APPEND_ONLY.format("changed"))

    def delete(self):
        raise ValueError(APPEND_ONLY.format("deleted"))


class Transition(models.Model):
    """Append-only audit row for every stage change. Never edited or deleted.

    Guarded at every level: save() of an existing row, delete(), queryset update()/delete() raise;
    a lead or handoff with history cannot be deleted (PROTECT, no cascade); database triggers refuse
    UPDATE (PostgreSQL and SQLite) and DELETE (PostgreSQL; see migration 0007 for why not SQLite).
    On SQLite a migration that rebuilds this table drops its trigger: recreate it in that migration
    (tests/security/test_audit_append_only.py fails until then)."""

    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="transitions")
    handoff = models.ForeignKey(
        Handoff, null=True, blank=True, on_delete=models.PROTECT, related_name="transitions"
    )
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="Empty for the system.",
    )
    at = models.DateTimeField(default=timezone.now)
    reason = models.ForeignKey(RejectionReason, null=True, blank=True, on_delete=models.PROTECT)
    note = models.TextField(blank=True)
    score = models.IntegerField(help_text="The lead's score at the time.")

    objects = TransitionQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # Lead detail: its history in order; reports: transitions by target stage and time.
            models.Index(fields=["lead", "at"], name="transition_lead_time_idx"),
            models.Index(fields=["to_stage", "at"], name="transition_stage_time_idx"),
        ]

    def __str__(self):
        return f"{self.lead}: {self.from_stage} → {self.to_stage}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError(APPEND_ONLY.format("changed"))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError(APPEND_ONLY.format("deleted"))


def purge_transitions(using: str = DEFAULT_DB_ALIAS) -> int:
    """Delete the whole audit trail; returns how many rows. Only `seed_demo --force` does this, when
    the operator replaces the demo data. On PostgreSQL the trigger refuses DELETE unless the
    transaction sets accord.audit_purge, which is switched on for this one statement only."""
    connection = connections[using]
    on_postgresql = connection.vendor == "postgresql"
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if on_postgresql:
            cursor.execute("SET LOCAL accord.audit_purge = 'on'")
        deleted = Transition.objects.using(using).all()._raw_delete(using)
        if on_postgresql:
            cursor.execute("SET LOCAL accord.audit_purge = 'off'")
    return deleted
