from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import roles
from .selectors import lead_counts_by_stage


@require_GET
def home(request):
    """Where each role starts: its tools, and how many leads sit in each stage."""
    user = request.user
    groups = set(user.groups.values_list("name", flat=True))
    context = {
        "roles": sorted(groups) or (["Administrator"] if user.is_superuser else []),
        "can_admin": user.is_staff,
        "is_marketer": roles.MARKETER in groups or user.is_superuser,
        "stage_counts": lead_counts_by_stage(),
    }
    return render(request, "home.html", context)


@login_not_required
@require_GET
def healthz(request):
    """Liveness for load balancers and the benchmark harness: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
