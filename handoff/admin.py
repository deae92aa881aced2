from django.contrib import admin

from .models import Handoff, RejectionReason, Transition


@admin.register(RejectionReason)
class RejectionReasonAdmin(admin.ModelAdmin):
    list_display = ("label", "code", "active", "disqualifies")
    list_filter = ("active", "disqualifies")
    search_fields = ("code", "label")

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
    list_display = ("at", "lead", "from_stage", "to_stage", "actor", "reason", "score")
    list_filter = ("to_stage", "from_stage", "reason")
    search_fields = ("lead__email", "note")
    list_select_related = ("lead", "actor", "reason")
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyAdmin):
    list_display = ("lead", "stage", "assignee", "created_at", "sla_due_at", "outcome", "rejection_reason")
    list_filter = ("stage", "outcome", "rejection_reason", "lead__source", "lead__campaign", "model_version")
    search_fields = ("lead__email", "lead__company", "rejection_note")
    list_select_related = ("lead", "assignee", "rejection_reason")
    date_hierarchy = "created_at"
    show_full_result_count = False
