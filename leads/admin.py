from django.contrib import admin, messages
from django.utils import timezone
from django.utils.formats import date_format
from import_export.admin import ImportMixin
from import_export.formats.base_formats import CSV

from handoff.admin import TransitionInline
from scoring import services as scoring_services

from . import services
from .models import ApiToken, Campaign, Interaction, InteractionKind, Lead
from .resources import LeadResource


class InteractionInline(admin.TabularInline):
    model = Interaction
    extra = 0
    fields = ("occurred_at", "kind", "properties", "external_id", "received_at")
    readonly_fields = fields
    ordering = ("-occurred_at",)
    show_change_link = True
    max_num = 0  # interactions arrive through the API, not by hand
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("kind")


@admin.register(Lead)
class LeadAdmin(ImportMixin, admin.ModelAdmin):
    resource_classes = [LeadResource]
    formats = [CSV]
    import_template_name = "admin/leads/lead/import.html"
    list_display = ("email", "full_name", "company", "job_title", "stage", "score", "source", "owner")
    list_filter = ("stage", "source", "seniority", "campaign", "owner", "country", "industry")
    search_fields = ("email", "first_name", "last_name", "company", "job_title")
    list_select_related = ("campaign", "owner")
    autocomplete_fields = ("campaign",)
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False  # counting a million leads on every page view is slow
    readonly_fields = (
        "stage",
        "stage_changed_at",
        "score",
        "fit_score",
        "engagement_score",
        "score_breakdown",
        "scored_at",
        "rescore_pending",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("email", ("first_name", "last_name"), "job_title", "seniority")}),
        ("Company", {"fields": ("company", "industry", ("company_size", "annual_revenue"), "country")}),
        ("Attribution", {"fields": ("source", "campaign", "owner")}),
        (
            "Stage and score (set by Accord)",
            {
                "fields": (
                    ("stage", "stage_changed_at"),
                    ("score", "fit_score", "engagement_score"),
                    "score_breakdown",
                    ("scored_at", "rescore_pending"),
                )
            },
        ),
        ("BANT", {"fields": ("bant_budget", "bant_authority", "bant_need", "bant_timing")}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    # Marketing sees sales' feedback on the lead itself: every stage change with reason and note.
    inlines = [InteractionInline, TransitionInline]

    @admin.display(description="Name", ordering="last_name")
    def full_name(self, obj):
        return obj.full_name

    @admin.display(description="Rescore requested")
    def rescore_pending(self, obj):
        """The oldest pending rescore request, if any (normally gone within a second; one due ahead
        waits for an interaction dated ahead, see scoring.RescoreRequest)."""
        oldest = obj.rescore_requests.order_by("requested_at").values_list("requested_at", flat=True).first()
        if oldest is None:
            return "—"
        if oldest > timezone.now():
            when = date_format(timezone.localtime(oldest), "DATETIME_FORMAT")
            return f"due {when} (an interaction its sender dated ahead counts from then)"
        return oldest

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.has_changed():
            # Lead fields feed the fit score.
            scoring_services.leads_request_rescore(lead_ids=[obj.pk])


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "channel", "spend", "starts_on", "ends_on")
    list_filter = ("channel",)
    search_fields = ("name",)
    date_hierarchy = "starts_on"


@admin.register(InteractionKind)
class InteractionKindAdmin(admin.ModelAdmin):
    list_display = ("slug", "label")
    search_fields = ("slug", "label")


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "kind", "lead", "external_id", "received_at")
    list_filter = ("kind",)
    search_fields = ("external_id", "lead__email")
    list_select_related = ("kind", "lead")
    raw_id_fields = ("lead",)
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # interactions arrive through the API

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "is_active", "created_by", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    @admin.display(boolean=True, description="Active")
    def is_active(self, obj):
        return obj.is_active

    def has_change_permission(self, request, obj=None):
        # A token is created once and then only revoked (an action), never edited.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        token, raw = services.api_token_create(name=obj.name, created_by=request.user)
        obj.pk = token.pk
        obj.refresh_from_db()
        messages.warning(
            request, f"Token for {token.name}: {raw} — copy it now, it is not shown again."
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        n = services.api_token_revoke(tokens=queryset)
        self.message_user(request, f"Revoked {n} token(s).")
