"""Report pages: thin views that read the filter bar, call one function of queries.py and render it,
or send one of its tables as CSV (`?format=csv&table=<slug>`, filters kept).

Access: the `handoff.view_reports` permission (Managers and Marketers); others get 403, anonymous
users are sent to the login page by LoginRequiredMiddleware.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.db import connection
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from leads.models import Campaign

from ..models import Handoff
from . import queries
from .csv import csv_response
from .filters import ReportFilterForm

PERMISSION = "handoff.view_reports"
EMPTY_MESSAGE = "No MQLs in this period"


@dataclass(frozen=True)
class Report:
    slug: str
    title: str
    description: str
    build: Callable
    needs_campaigns: bool = False


REPORTS = (
    Report("funnel", "Funnel", "Leads → MQL → SAL → SQL → opportunity → won, by cohort and by source.",
           queries.funnel),
    Report("acceptance", "Acceptance", "How many MQLs sales accepts, and why it rejects the rest.",
           queries.acceptance, needs_campaigns=True),
    Report("speed", "Speed to lead",
           "How fast SDRs act on new MQLs, SLA compliance, and what is overdue now.", queries.speed),
    Report("velocity", "Velocity", "Median and p90 time in each stage; SQL → opportunity ratio.",
           queries.velocity),
    Report("cost", "Cost per SQL", "Campaign spend per MQL and per SQL, by campaign and by channel.",
           queries.cost, needs_campaigns=True),
    Report("calibration", "Score calibration", "Acceptance and SQL rate by score band: does a higher score "
           "mean a better lead?", queries.calibration),
    Report("rules", "Rule effectiveness", "For each scoring rule, acceptance and SQL rate of the MQLs it "
           "contributed to vs. the rest.", queries.rules),
    Report("sdrs", "Per SDR", "Handoffs received, accepted, rejected and qualified; speed-to-lead and SLA "
           "per SDR.", queries.sdrs),
)
BY_SLUG = {report.slug: report for report in REPORTS}


def now():
    """The moment reports are computed for (SLA states, the default date range). A seam for tests."""
    return timezone.now()


# The distinct model versions by a walk down the (model_version, created_at) index, one probe per
# version, instead of reading every handoff's entry (~130,000 at 1M leads). Deterministic collations
# order '' before any other string, so "> ''" is "<> ''".
VERSIONS_SQL = """
WITH RECURSIVE versions (v) AS (
    (SELECT model_version FROM handoff_handoff WHERE model_version > '' ORDER BY model_version LIMIT 1)
    UNION ALL
    SELECT (SELECT h.model_version FROM handoff_handoff h WHERE h.model_version > versions.v
            ORDER BY h.model_version LIMIT 1)
    FROM versions WHERE versions.v IS NOT NULL
)
SELECT v FROM versions WHERE v IS NOT NULL
"""


def model_versions() -> list[str]:
    """The model versions recorded on handoffs, in order (empty ones left out)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(VERSIONS_SQL)
            return [v for (v,) in cursor.fetchall()]
    return list(
        Handoff.objects.exclude(model_version="")
        .order_by("model_version")
        .values_list("model_version", flat=True)
        .distinct()
    )


def _filters(request, report: str = ""):
    """The filter bar (2 queries: campaigns, model versions) and the filters it yields."""
    campaigns = list(Campaign.objects.order_by("name"))
    versions = model_versions()
    form = ReportFilterForm(
        request.GET, campaigns=campaigns, versions=versions, today=timezone.localdate(now()), report=report
    )
    return form, form.filters(), campaigns


@require_GET
@permission_required(PERMISSION, raise_exception=True)
def index(request):
    form, filters, _ = _filters(request)
    return render(
        request,
        "reports/index.html",
        {"form": form, "filters": filters, "query": filters.querystring(), "reports": REPORTS},
    )


@require_GET
@permission_required(PERMISSION, raise_exception=True)
def report(request, slug: str):
    spec = BY_SLUG[slug]
    form, filters, campaigns = _filters(request, report=slug)
    extra = {"campaigns": campaigns} if spec.needs_campaigns else {}
    result = spec.build(filters, now=now(), **extra)

    if request.GET.get("format") == "csv":
        return _csv(request, spec, filters, result)

    # Downloads carry the filters in effect (defaults included), so the file matches the page.
    params = {**filters.page_params(slug), "format": "csv"}
    for table in result.all_tables():
        table.csv_url = "?" + urlencode({**params, "table": table.slug})
    return render(
        request,
        f"reports/{slug}.html",
        {
            "report": spec,
            "reports": REPORTS,
            "form": form,
            "filters": filters,
            "query": filters.querystring(),
            "result": result,
            "summary_csv": result.summary.csv_url if result.summary else "",
            "empty_message": EMPTY_MESSAGE,
            "time_zone": settings.TIME_ZONE,
        },
    )


def _csv(request, spec: Report, filters, result):
    wanted = request.GET.get("table") or (result.tables[0].slug if result.tables else "summary")
    period = f"{filters.date_from:%Y%m%d}-{filters.date_to:%Y%m%d}"
    if result.empty:
        # No table is built for an empty period; say so rather than send zeros.
        name = re.sub(r"[^a-z_]", "", wanted)[:40] or "table"
        return csv_response([["message"], [EMPTY_MESSAGE]], f"accord-{spec.slug}-{name}-{period}.csv")
    table = result.table(wanted)
    if table is None:
        raise Http404(f"This report has no table named {wanted!r}.")
    return csv_response(table.csv_rows(), f"accord-{spec.slug}-{table.slug}-{period}.csv")
