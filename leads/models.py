import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Source(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    REFERRAL = "referral", "Referral"
    CONTENT = "content", "Content"
    PAID = "paid", "Paid"
    EVENT = "event", "Event"
    OUTBOUND = "outbound", "Outbound"
    PARTNER = "partner", "Partner"


class Stage(models.TextChoices):
    LEAD = "lead", "Lead"
    MQL = "mql", "MQL"
    SAL = "sal", "SAL"
    SQL = "sql", "SQL"
    OPPORTUNITY = "opportunity", "Opportunity"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    RECYCLED = "recycled", "Recycled"
    DISQUALIFIED = "disqualified", "Disqualified"


class Seniority(models.TextChoices):
    ENTRY = "entry", "Entry"
    MANAGER = "manager", "Manager"
    DIRECTOR = "director", "Director"
    VP = "vp", "VP"
    C_LEVEL = "c_level", "C-level"


class Campaign(models.Model):
    class Channel(models.TextChoices):
        SEARCH = "search", "Paid search"
        SOCIAL = "social", "Paid social"
        EMAIL = "email", "Email"
        EVENT = "event", "Event"
        CONTENT = "content", "Content syndication"
        WEBINAR = "webinar", "Webinar"
        PARTNER = "partner", "Partner"
        OTHER = "other", "Other"

    name = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.OTHER)
    spend = models.DecimalField(
        max_digits=12, decimal_places=2, default=0, help_text="Total spend in the account currency."
    )
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(spend__gte=0), name="campaign_spend_not_negative"),
            models.CheckConstraint(
                condition=models.Q(starts_on__isnull=True)
                | models.Q(ends_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="campaign_ends_after_start",
            ),
        ]

    def __str__(self):
        return self.name


class Lead(models.Model):
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    job_title = models.CharField(max_length=200, blank=True)
    seniority = models.CharField(max_length=20, choices=Seniority.choices, blank=True)
    company = models.CharField(max_length=200, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    company_size = models.PositiveIntegerField(null=True, blank=True, help_text="Employees.")
    annual_revenue = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 alpha-2 code, e.g. DE.")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.INBOUND)
    # No single-column FK indexes: (campaign, stage) and (owner, stage) below serve those lookups,
    # and every index is one more write for each rescored lead.
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads", db_index=False
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
        help_text="The SDR who works this lead.",
        db_index=False,
    )

    # Written only by handoff.services (the state machine).
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.LEAD)
    stage_changed_at = models.DateTimeField(default=timezone.now)

    # Written only by scoring services.
    score = models.IntegerField(default=0)
    fit_score = models.IntegerField(default=0)
    engagement_score = models.IntegerField(default=0)
    score_breakdown = models.JSONField(default=list, blank=True)
    # When the data the score was computed from was read (a rescore never overwrites a score
    # computed from newer data). Pending rescores are scoring.RescoreRequest rows.
    scored_at = models.DateTimeField(null=True, blank=True)
    # The engagement total before rounding (the engine's float), within engagement_error of it,
    # computed with the behaviour rules whose fingerprint is engagement_basis. An edit of fit rules
    # alone rescores from these and the lead's own fields, without reading interactions.
    engagement_total = models.FloatField(null=True, blank=True, editable=False)
    engagement_error = models.FloatField(null=True, blank=True, editable=False)
    engagement_basis = models.BigIntegerField(null=True, blank=True, editable=False)

    # BANT, filled by the SDR when qualifying.
    bant_budget = models.TextField(blank=True)
    bant_authority = models.TextField(blank=True)
    bant_need = models.TextField(blank=True)
    bant_timing = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Emails are unique whatever their case: Ann@X.com and ann@x.com are one person.
            models.UniqueConstraint(Lower("email"), name="lead_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(stage__in=Stage.values), name="lead_stage_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=Source.values), name="lead_source_valid"
            ),
        ]
        indexes = [
            # Board and reports: leads by stage, newest stage change first.
            models.Index(fields=["stage", "-stage_changed_at"], name="lead_stage_idx"),
            # Board filter "mine" and per-SDR reports.
            models.Index(fields=["owner", "stage"], name="lead_owner_stage_idx"),
            # Reports by source / campaign; the funnel counts leads created per period and source.
            models.Index(fields=["source"], name="lead_source_idx"),
            models.Index(fields=["created_at"], include=["source", "campaign"], name="lead_created_idx"),
            models.Index(fields=["campaign", "stage"], name="lead_campaign_stage_idx"),
        ]
        permissions = [
            ("import_lead", "Can import leads from CSV"),
        ]

    def __str__(self):
        return self.full_name or self.email

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def email_domain(self):
        return self.email.rpartition("@")[2].lower()

    def save(self, *args, **kwargs):
        # Store emails as typed but trimmed; uniqueness ignores case (see constraint).
        self.email = (self.email or "").strip()
        super().save(*args, **kwargs)


class InteractionKind(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    label = models.CharField(max_length=100)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.label


class Interaction(models.Model):
    # No single-column FK indexes: the composite indexes below start with these columns, and every
    # extra index costs each of the many inserts.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    kind = models.ForeignKey(InteractionKind, on_delete=models.PROTECT, related_name="interactions", db_index=False)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    # The sender's idempotency key: a repeated delivery is stored once.
    external_id = models.CharField(max_length=200, unique=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            # Rescoring (one lead, a set, a range of ids) and the lead timeline: a lead's
            # interactions. With the kind in it, a set-wise rescore reads them from the index alone
            # (scoring/sqlscore.py, `beh`). Every query reads interactions by lead, so this is the
            # only secondary index besides external_id's: each one costs every insert
            # (docs/decisions.md).
            models.Index(fields=["lead", "kind", "occurred_at"], name="interaction_lead_kind_time_idx"),
        ]

    def __str__(self):
        return f"{self.kind.slug} by {self.lead.email} at {self.occurred_at:%Y-%m-%d %H:%M}"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for marketing tools. Only its SHA-256 is stored; the raw token is shown once."""

    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=8, editable=False, help_text="First characters, to tell tokens apart."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API token"

    def __str__(self):
        return self.name

    @property
    def is_active(self):
        return self.revoked_at is None

    @staticmethod
    def generate() -> str:
        return secrets.token_urlsafe(32)
