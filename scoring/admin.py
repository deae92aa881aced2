"""The scoring admin: where marketers tune rules, preview the impact of a change, publish, import and
export models, and watch a rescore's progress.

Custom views (all under /admin/scoring/):
  scoringmodel/import/               upload a JSON file → a draft             (add permission)
  scoringmodel/<id>/preview/         impact of making <id> the active model     (view permission)
  scoringmodel/<id>/publish/         confirmation with the preview, then publish
                                     (needs scoring.publish_scoringmodel)
  scoringmodel/<id>/export/          download the model as JSON                  (view permission)
  scoringmodel/<id>/duplicate/       copy the model and its rules as a draft     (add permission)
  rescorerun/<id>/progress/          a bulk rescore's progress, refreshing itself while it runs

Writes go through scoring.services (publish, rules changed) and scoring.serialization (import,
duplicate); this module never sets a status or a version itself.
"""

from __future__ import annotations

import dataclasses

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, Value, When
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import slugify

from . import edit_scope, services
from .forms import (
    BehaviorRuleForm,
    DuplicateModelForm,
    FitRuleForm,
    ImportModelForm,
    ScoringModelForm,
    UniqueLabelFormSet,
)
from .models import BehaviorRule, FitRule, RescoreRun, ScoringModel
from .serialization import (
    ModelFileError,
    model_duplicate,
    model_from_dict,
    model_to_json,
    number,
    parse_model_json,
)

PUBLISH_PERMISSION = "scoring.publish_scoringmodel"


RESCORE_MESSAGES = {
    edit_scope.FULL: "every lead is being rescored with {v}",
    edit_scope.FIT: "the fit of every lead is being rescored with {v} (engagement stays as last scored)",
    edit_scope.THRESHOLD: "scores stay as they are; leads that now reach the threshold of {v} are being promoted",
    edit_scope.NOTHING: "nothing needs rescoring; it is now {v}",
}


def _spec_before_edit(form):
    """The model as it was before this change form's save: rules from the database (the inlines
    are saved after this is called), threshold and minimum fit from the form's initial values."""
    spec = ScoringModel.objects.get(pk=form.instance.pk).to_spec()
    threshold, min_fit = form.initial.get("mql_threshold"), form.initial.get("mql_min_fit")
    return dataclasses.replace(
        spec,
        mql_threshold=spec.mql_threshold if threshold is None else float(threshold),
        mql_min_fit=None if min_fit in (None, "") else float(min_fit),
    )


def _progress_url(run: RescoreRun) -> str:
    return reverse("admin:scoring_rescorerun_progress", args=[run.pk])


def _is_archived(obj) -> bool:
    return obj is not None and obj.status == ScoringModel.Status.ARCHIVED


# --------------------------------------------------------------------------
# Rule inlines
# --------------------------------------------------------------------------


class RuleInline(admin.TabularInline):
    """An archived model is history: its rules are read-only (duplicate it to edit a copy)."""

    extra = 1
    formset = UniqueLabelFormSet

    def has_add_permission(self, request, obj=None):
        return not _is_archived(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not _is_archived(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _is_archived(obj) and super().has_delete_permission(request, obj)


class FitRuleInline(RuleInline):
    model = FitRule
    form = FitRuleForm
    fields = ("label", "field", "operator", "value", "points")
    verbose_name = "fit rule"
    verbose_name_plural = "fit rules — who the lead is"


class BehaviorRuleInline(RuleInline):
    model = BehaviorRule
    form = BehaviorRuleForm
    fields = ("label", "kind", "points", "property", "max_points", "half_life_days", "within_days")
    verbose_name = "behaviour rule"
    verbose_name_plural = "behaviour rules — what the lead does"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("kind")


# --------------------------------------------------------------------------
# Scoring models
# --------------------------------------------------------------------------


@admin.register(ScoringModel)
class ScoringModelAdmin(admin.ModelAdmin):
    form = ScoringModelForm
    list_display = (
        "name",
        "status",
        "version",
        "threshold",
        "min_fit",
        "fit_rule_count",
        "behavior_rule_count",
        "published",
        "published_by_name",
    )
    # The active model first, then drafts, then the archive.
    ordering = (
        Case(
            When(status=ScoringModel.Status.ACTIVE, then=Value(0)),
            When(status=ScoringModel.Status.DRAFT, then=Value(1)),
            default=Value(2),
        ).asc(),
        "name",
    )
    list_filter = ("status",)
    search_fields = ("name",)
    readonly_fields = ("status", "version", "published_at", "published_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", ("mql_threshold", "mql_min_fit"))}),
        (
            "Status (set by publishing)",
            {
                "fields": (
                    ("status", "version"),
                    ("published_at", "published_by"),
                    ("created_at", "updated_at"),
                )
            },
        ),
    )
    inlines = [FitRuleInline, BehaviorRuleInline]
    actions = ["publish_action", "duplicate_action", "export_action"]

    # --- list --------------------------------------------------------------------------------

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("published_by")
            .annotate(
                fit_rule_total=Count("fit_rules", distinct=True),
                behavior_rule_total=Count("behavior_rules", distinct=True),
            )
        )

    @admin.display(description="Threshold", ordering="mql_threshold")
    def threshold(self, obj):
        return number(obj.mql_threshold)

    @admin.display(description="Min fit", ordering="mql_min_fit")
    def min_fit(self, obj):
        return number(obj.mql_min_fit)

    @admin.display(description="Published", ordering="published_at")
    def published(self, obj):
        return obj.published_at

    @admin.display(description="By", ordering="published_by__username")
    def published_by_name(self, obj):
        return obj.published_by.get_username() if obj.published_by else None

    @admin.display(description="Fit rules", ordering="fit_rule_total")
    def fit_rule_count(self, obj):
        return getattr(obj, "fit_rule_total", None)

    @admin.display(description="Behaviour rules", ordering="behavior_rule_total")
    def behavior_rule_count(self, obj):
        return getattr(obj, "behavior_rule_total", None)

    # --- permissions -------------------------------------------------------------------------

    def has_publish_permission(self, request, obj=None):
        return request.user.has_perm(PUBLISH_PERMISSION)

    def has_change_permission(self, request, obj=None):
        # Archived models are history (handoffs and reports name their versions): read-only.
        return not _is_archived(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # The active model cannot be deleted: publish another one first.
        if obj is not None and obj.status == ScoringModel.Status.ACTIVE:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        active = queryset.filter(status=ScoringModel.Status.ACTIVE)
        if active.exists():
            self.message_user(
                request,
                f"“{active.first()}” is the active model and was not deleted; publish another model first.",
                messages.WARNING,
            )
        super().delete_queryset(request, queryset.exclude(status=ScoringModel.Status.ACTIVE))

    # --- change form -------------------------------------------------------------------------

    def save_related(self, request, form, formsets, change):
        # The rules are not saved yet and the threshold's old value is the form's initial one: this
        # is the model as it was, which tells the rescore what the edit changed.
        previous = _spec_before_edit(form) if change else None
        super().save_related(request, form, formsets, change)
        model = form.instance
        if not change or model.status != ScoringModel.Status.ACTIVE:
            return
        scoring_changed = bool({"mql_threshold", "mql_min_fit"} & set(form.changed_data)) or any(
            formset.has_changed() for formset in formsets
        )
        if not scoring_changed:
            return
        run = services.model_rules_changed(model=model, previous=previous)
        if run is not None:
            model.refresh_from_db()
            self.message_user(
                request,
                format_html(
                    "“{}” is the active model, so {}. "
                    '<a href="{}">See the rescore progress</a>.',
                    model.name,
                    RESCORE_MESSAGES[run.scope].format(v=model.version_label),
                    _progress_url(run),
                ),
                messages.INFO,
            )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), **self._tool_context(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), **self._tool_context(request)}
        return super().changelist_view(request, extra_context)

    def _tool_context(self, request):
        return {
            "has_publish_permission": self.has_publish_permission(request),
            "has_import_permission": self.has_add_permission(request),
            "has_duplicate_permission": self.has_add_permission(request),
        }

    # --- URLs --------------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("import/", wrap(self.import_view), name=f"{name}_import"),
            path("<int:object_id>/preview/", wrap(self.preview_view), name=f"{name}_preview"),
            path("<int:object_id>/publish/", wrap(self.publish_view), name=f"{name}_publish"),
            path("<int:object_id>/export/", wrap(self.export_view), name=f"{name}_export"),
            path("<int:object_id>/duplicate/", wrap(self.duplicate_view), name=f"{name}_duplicate"),
        ] + super().get_urls()

    def _url(self, view: str, obj: ScoringModel) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{view}", args=[obj.pk])

    def _context(self, request, obj=None, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": obj,
            "object": obj,
            **self._tool_context(request),
            **extra,
        }

    def _get_model_or_404(self, request, object_id) -> ScoringModel:
        obj = self.get_object(request, str(object_id))
        if obj is None:
            raise Http404(f"No scoring model with id {object_id}.")
        return obj

    # --- preview and publish -----------------------------------------------------------------

    def preview_view(self, request, object_id):
        model = self._get_model_or_404(request, object_id)
        if not self.has_view_permission(request, model):
            raise PermissionDenied
        impact = services.model_preview_impact(model=model)
        return TemplateResponse(
            request,
            "admin/scoring/scoringmodel/preview.html",
            self._context(
                request,
                model,
                title=f"Impact of “{model.name}”",
                impact=impact,
                active=services.active_model(),
                can_publish=(
                    self.has_publish_permission(request) and model.status != ScoringModel.Status.ACTIVE
                ),
            ),
        )

    def publish_view(self, request, object_id):
        model = self._get_model_or_404(request, object_id)
        if not self.has_publish_permission(request, model):
            raise PermissionDenied
        if model.status == ScoringModel.Status.ACTIVE:
            self.message_user(request, f"“{model.name}” is already the active model.", messages.INFO)
            return HttpResponseRedirect(reverse("admin:scoring_scoringmodel_change", args=[model.pk]))
        if request.method == "POST":
            run = services.model_publish(model=model, by=request.user)
            model.refresh_from_db()
            self.log_change(request, model, f"Published {model.version_label}.")
            self.message_user(
                request,
                f"Published {model.version_label}: it is now the active model; every lead is being rescored.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(_progress_url(run))
        impact = services.model_preview_impact(model=model)
        return TemplateResponse(
            request,
            "admin/scoring/scoringmodel/publish_confirmation.html",
            self._context(
                request,
                model,
                title=f"Publish “{model.name}”?",
                impact=impact,
                active=services.active_model(),
                rule_count=model.fit_rules.count() + model.behavior_rules.count(),
            ),
        )

    @admin.action(description="Publish the selected model (preview first)", permissions=["publish"])
    def publish_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model to publish.", messages.WARNING)
            return None
        return HttpResponseRedirect(self._url("publish", queryset.get()))

    # --- export, import, duplicate -----------------------------------------------------------

    def export_view(self, request, object_id):
        model = self._get_model_or_404(request, object_id)
        if not self.has_view_permission(request, model):
            raise PermissionDenied
        return self._download(model)

    def _download(self, model: ScoringModel) -> HttpResponse:
        response = HttpResponse(model_to_json(model), content_type="application/json; charset=utf-8")
        filename = f"{slugify(model.name) or 'scoring-model'}-v{model.version}.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @admin.action(description="Export the selected model as JSON", permissions=["view"])
    def export_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model to export.", messages.WARNING)
            return None
        return self._download(queryset.get())

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        problems: list[str] = []
        if request.method == "POST":
            form = ImportModelForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    data = parse_model_json(form.cleaned_data["file"].read())
                    model = model_from_dict(data, replace=form.cleaned_data["replace"], by=request.user)
                except ModelFileError as exc:
                    problems = exc.messages
                else:
                    self.log_addition(request, model, [{"added": {}}])
                    self.message_user(
                        request,
                        f"Imported “{model.name}” as a draft. Preview its impact, then publish it.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:scoring_scoringmodel_change", args=[model.pk]))
        else:
            form = ImportModelForm()
        return TemplateResponse(
            request,
            "admin/scoring/scoringmodel/import.html",
            self._context(request, title="Import a scoring model from JSON", form=form, problems=problems),
            status=400 if problems else 200,
        )

    def duplicate_view(self, request, object_id):
        source = self._get_model_or_404(request, object_id)
        if not (self.has_add_permission(request) and self.has_view_permission(request, source)):
            raise PermissionDenied
        problems: list[str] = []
        if request.method == "POST":
            form = DuplicateModelForm(request.POST)
            if form.is_valid():
                try:
                    copy = model_duplicate(source, name=form.cleaned_data["name"])
                except ModelFileError as exc:
                    problems = exc.messages
                else:
                    self.log_addition(request, copy, f"Duplicated from “{source.name}”.")
                    self.message_user(
                        request,
                        f"“{copy.name}” is a draft copy of “{source.name}”: edit it freely.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:scoring_scoringmodel_change", args=[copy.pk]))
        else:
            form = DuplicateModelForm(initial={"name": _copy_name(source.name)})
        return TemplateResponse(
            request,
            "admin/scoring/scoringmodel/duplicate.html",
            self._context(
                request, source, title=f"Duplicate “{source.name}” as a draft", form=form, problems=problems
            ),
        )

    @admin.action(description="Duplicate the selected models as drafts", permissions=["add"])
    def duplicate_action(self, request, queryset):
        for source in queryset:
            try:
                copy = model_duplicate(source, name=_copy_name(source.name))
            except ModelFileError as exc:
                self.message_user(
                    request, f"“{source.name}” was not duplicated: " + "; ".join(exc.messages), messages.ERROR
                )
            else:
                self.log_addition(request, copy, f"Duplicated from “{source.name}”.")
                self.message_user(request, f"Created the draft “{copy.name}”.", messages.SUCCESS)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _copy_name(name: str) -> str:
    """A free name for a copy: "X (copy)", then "X (copy 2)", ..."""
    max_length = ScoringModel._meta.get_field("name").max_length
    n = 1
    while True:
        suffix = " (copy)" if n == 1 else f" (copy {n})"
        candidate = name[: max_length - len(suffix)] + suffix
        if not ScoringModel.objects.filter(name=candidate).exists():
            return candidate
        n += 1


# --------------------------------------------------------------------------
# Rescore runs (read-only)
# --------------------------------------------------------------------------


@admin.register(RescoreRun)
class RescoreRunAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "model",
        "reason",
        "status",
        "progress",
        "changed_count",
        "promoted_count",
        "started_at",
        "finished_at",
        "progress_link",
    )
    list_filter = ("status", "model")
    list_select_related = ("model",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Progress")
    def progress(self, obj):
        about = "about " if obj.total_is_estimate else ""
        return f"{obj.done:,}/{about}{obj.total:,} ({obj.percent}%)"

    @admin.display(description="Changed", ordering="changed")
    def changed_count(self, obj):
        return f"{obj.changed:,}"

    @admin.display(description="Promoted", ordering="promoted")
    def promoted_count(self, obj):
        return f"{obj.promoted:,}"

    @admin.display(description="")
    def progress_link(self, obj):
        return format_html('<a href="{}">Progress</a>', _progress_url(obj))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:object_id>/progress/", wrap(self.progress_view), name="scoring_rescorerun_progress"),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The progress page is this record's page.
        if str(object_id).isdigit():
            return HttpResponseRedirect(reverse("admin:scoring_rescorerun_progress", args=[object_id]))
        return super().change_view(request, object_id, form_url, extra_context)

    def progress_view(self, request, object_id):
        run = get_object_or_404(RescoreRun.objects.select_related("model"), pk=object_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        running = run.status in (RescoreRun.Status.QUEUED, RescoreRun.Status.RUNNING)
        end = run.finished_at or timezone.now()
        elapsed = _duration((end - run.started_at).total_seconds()) if run.started_at else None
        return TemplateResponse(
            request,
            "admin/scoring/rescorerun/progress.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "model_opts": ScoringModel._meta,
                "title": f"Rescore: {run.reason}",
                "run": run,
                "running": running,
                "elapsed": elapsed,
                "refresh_seconds": 2,
            },
        )
