from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from leads.models import InteractionKind

from . import edit_scope, rules
from .engine import BehaviorRuleSpec, FitRuleSpec, ModelSpec

FIELD_CHOICES = [(name, name.replace("_", " ")) for name in rules.LEAD_FIELDS]
OPERATOR_CHOICES = [(op, op.replace("_", " ")) for op in rules.OPERATORS]


class ScoringModel(models.Model):
    """A set of rules and a threshold that define a qualified lead. Exactly one is active."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    mql_threshold = models.DecimalField(
        max_digits=8, decimal_places=2, default=60, help_text="A lead whose score reaches this becomes an MQL."
    )
    mql_min_fit = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Optional: the fit score an MQL needs as well, so engagement alone cannot qualify a lead.",
    )
    version = models.PositiveIntegerField(
        default=0, help_text="Goes up each time the model is published or its active rules change."
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-status", "name"]
        constraints = [
            # At most one active model; publishing swaps them in one transaction.
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="active"), name="one_active_scoring_model"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "active", "archived"]), name="scoring_model_status_valid"
            ),
        ]
        permissions = [("publish_scoringmodel", "Can publish a scoring model")]

    def __str__(self):
        return self.name

    @property
    def version_label(self) -> str:
        """How handoffs and reports name the model a lead qualified under."""
        return f"{self.name} v{self.version}"

    def to_spec(self) -> ModelSpec:
        """The pure engine's view of this model (two queries)."""
        return ModelSpec(
            fit_rules=tuple(rule.to_spec() for rule in self.fit_rules.all()),
            behavior_rules=tuple(rule.to_spec() for rule in self.behavior_rules.select_related("kind")),
            mql_threshold=float(self.mql_threshold),
            mql_min_fit=None if self.mql_min_fit is None else float(self.mql_min_fit),
        )


class FitRule(models.Model):
    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="fit_rules")
    position = models.PositiveIntegerField(default=0)
    label = models.CharField(max_length=100)
    field = models.CharField(max_length=30, choices=FIELD_CHOICES, help_text="The lead field to test.")
    operator = models.CharField(max_length=20, choices=OPERATOR_CHOICES)
    value = models.JSONField(
        null=True,
        blank=True,
        help_text='JSON: a value ("vp", 200), a list (["vp", "head"]), [low, high] for between, '
        "empty for is set / is not set.",
    )
    points = models.DecimalField(max_digits=8, decimal_places=2, help_text="May be negative.")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.label

    def clean(self):
        errors = rules.validate_fit_rule(self.field, self.operator, self.value)
        if errors:
            raise ValidationError({key: f"{self.label or 'Fit rule'}: {msg}" for key, msg in errors.items()})

    def to_spec(self) -> FitRuleSpec:
        return FitRuleSpec(
            id=self.pk, label=self.label, field=self.field, operator=self.operator,
            value=self.value, points=float(self.points),
        )


class BehaviorRule(models.Model):
    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="behavior_rules")
    position = models.PositiveIntegerField(default=0)
    label = models.CharField(max_length=100)
    kind = models.ForeignKey(InteractionKind, on_delete=models.PROTECT, related_name="behavior_rules")
    property = models.JSONField(
        null=True,
        blank=True,
        help_text='Optional JSON condition on the interaction\'s properties, e.g. '
        '{"key": "asset_type", "operator": "equals", "value": "whitepaper"}.',
    )
    points = models.DecimalField(max_digits=8, decimal_places=2, help_text="Per interaction. May be negative.")
    max_points = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True,
        help_text="Cap on this rule's total (in either direction).",
    )
    half_life_days = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True,
        help_text="Points halve every this many days. Empty: no decay.",
    )
    within_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Only interactions from the last this many days count."
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_points__isnull=True) | models.Q(max_points__gt=0),
                name="behavior_rule_max_points_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(half_life_days__isnull=True) | models.Q(half_life_days__gt=0),
                name="behavior_rule_half_life_positive",
            ),
        ]

    def __str__(self):
        return self.label

    def clean(self):
        errors = {}
        if self.property not in (None, {}):
            # The condition is one form field, so every fault in it (key, operator, value) is listed
            # under "property"; a dict keyed by "property" would keep only the last.
            faults = rules.validate_property_condition(self.property).values()
            if faults:
                errors["property"] = [f"{self.label}: {msg}" for msg in faults]
        if self.max_points is not None and self.max_points <= 0:
            errors["max_points"] = f"{self.label}: max points must be positive (it caps the total either way)"
        if self.half_life_days is not None and self.half_life_days <= 0:
            errors["half_life_days"] = f"{self.label}: half-life must be a positive number of days"
        if errors:
            raise ValidationError(errors)

    def to_spec(self) -> BehaviorRuleSpec:
        return BehaviorRuleSpec(
            id=self.pk,
            label=self.label,
            kind=self.kind.slug,
            points=float(self.points),
            property=self.property or None,
            max_points=None if self.max_points is None else float(self.max_points),
            half_life_days=None if self.half_life_days is None else float(self.half_life_days),
            within_days=self.within_days,
        )


class RescoreRun(models.Model):
    """A bulk rescore (after a publish, an edit of the active model, or decay): of every lead, or
    only what the edit needs (`scope`).

    The admin shows its progress; `done` counts leads processed so far."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="rescore_runs")
    reason = models.CharField(max_length=100)
    # What the change that started the run needs rescored (scoring/edit_scope.py).
    scope = models.CharField(max_length=10, choices=edit_scope.CHOICES, default=edit_scope.FULL)
    # For a fit-only edit: the fit rules it changed, as they were and as they are (engine specs as
    # dicts). Only leads that one of them matches can change score.
    changed_fit_rules = models.JSONField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0, help_text="Leads whose score changed.")
    promoted = models.PositiveIntegerField(default=0, help_text="Leads that became MQLs.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched after every chunk; the sweep restarts a run whose heartbeat stopped (its worker died).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.reason} ({self.get_status_display()})"

    # A run over every lead of a table this large starts from PostgreSQL's estimate of the number
    # of leads (counting them cost up to a second); the total is exact once the run is done.
    ESTIMATED_FROM = 100_000

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.done / self.total))

    @property
    def total_is_estimate(self) -> bool:
        return (
            self.status in (self.Status.QUEUED, self.Status.RUNNING)
            and self.scope in (edit_scope.FULL, edit_scope.FIT)
            and self.total >= self.ESTIMATED_FROM
        )


class RescoreRequest(models.Model):
    """A lead whose score may be out of date: an interaction arrived or its fields changed.

    Append-only on the writers' side: ingestion only INSERTs here and never locks lead rows, so a
    batch of interactions never waits for a rescore (or another batch) holding the same leads. A
    rescore deletes exactly the requests it read before reading the lead's data, so a request is
    only ever removed by a rescore that saw what it was about. The sweep rescores leads whose
    requests are older than a grace period: a lost task never leaves a lead stale. A request whose
    `requested_at` is ahead is due then (an interaction dated ahead): nothing takes it before."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="rescore_requests")
    requested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["requested_at"], name="rescore_request_age_idx")]

    def __str__(self):
        return f"rescore lead {self.lead_id} (requested {self.requested_at:%Y-%m-%d %H:%M:%S})"
