from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from .models import Handoff, RejectionReason, Transition


class TransitionInline(admin.TabularInline):
    """A lead's or a handoff's stage history with reasons and notes, read-only.

    Used on HandoffAdmin here; LeadAdmin (leads/admin.py) can list it in its `inlines` too: Transition
    has exactly one foreign key to Lead and one to Handoff, so the same class works on both."""

    model = Transition
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("at", "from_stage", "to_stage", "who", "reason", "note", "score")
    readonly_fields = fields
    ordering = ("-at", "-id")
    verbose_name = "stage change"
    verbose_name_plural = "Stage history (newest first): who moved it, why, with which note"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "reason")

    @admin.display(description="By")
    def who(self, obj):
        return obj.actor or "system"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RejectionsFilter(admin.SimpleListFilter):
    """All rejections at once (recycled and disqualified), the marketers' feedback view."""

    title = "rejections"
    parameter_name = "rejected"

    def lookups(self, request, model_admin):
        return [("yes", "Only rejections"), ("no", "Everything else")]

    def queryset(self, request, queryset):
        rejected = Q(rejection_reason__isnull=False)
        if self.value() == "yes":
            return queryset.filter(rejected)
        if self.value() == "no":
            return queryset.exclude(rejected)
        return queryset


@admin.register(RejectionReason)
class RejectionReasonAdmin(admin.ModelAdmin):
    list_display = ("label", "code", "active", "disqualifies", "rejections")
    list_filter = ("active", "disqualifies")
    search_fields = ("code", "label")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(rejection_count=Count("handoffs"))

    @admin.display(description="Rejections", ordering="rejection_count")
    def rejections(self, obj):
        """How many handoffs were rejected with this reason, linking to them."""
        url = reverse("admin:handoff_handoff_changelist") + f"?rejection_reason__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.rejection_count)

    def has_delete_permission(self, request, obj=None):
        return False  # past rejections point at reasons: deactivate instead


class ReadOnlyAdmin(admin.ModelAdmin):
    """Handoffs and transitions change only through the state machine; the admin shows them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Transition)
class TransitionAdmin(ReadOnlyAdmin):
    list_display = ("at", "lead", "from_stage", "to_stage", "actor", "reason", "note", "score")
    list_filter = ("to_stage", "from_stage", "reason", "lead__source", "lead__campaign")
    search_fields = ("lead__email", "note")
    list_select_related = ("lead", "actor", "reason")
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyAdmin):
    list_display = (
        "lead",
        "stage",
        "assignee",
        "created_at",
        "sla_due_at",
        "outcome",
        "rejection_reason",
        "short_note",
        "model_version",
    )
    list_filter = (
        RejectionsFilter,
        "rejection_reason",
        "lead__source",
        "lead__campaign",
        "model_version",
        "stage",
        "outcome",
    )
    search_fields = ("lead__email", "lead__company", "rejection_note")
    list_select_related = ("lead", "assignee", "rejection_reason")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [TransitionInline]

    @admin.display(description="Note")
    def short_note(self, obj):
        note = obj.rejection_note or ""
        return note if len(note) <= 80 else note[:79] + "…"
