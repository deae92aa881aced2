"""The two rollups some reports read instead of counting raw rows (PostgreSQL only; see migration
handoff 0009 and docs/reports.md, "Performance").

- report_lead_day: leads created per local day × source × campaign (0 = none) — the funnel's Leads;
- report_rule_day: rule contributions per local day of the MQL × model version × label × decided /
  accepted / qualified, with their points — rule effectiveness.

Database triggers keep both exact on every write (insert, update, delete, truncate, COPY). Each writer
adds to rows of its own (`slot` = its backend pid), so writers never wait on each other; a read sums
the slots. When a read meets more than COMPACT_AFTER uncompacted rows it folds them into slot 0
(report_rollup_compact(), one extra statement, rarely). Days are local days in the time zone stored
with the rollups; when settings.TIME_ZONE differs (the setting changed) the first read recounts both
(report_rollup_rebuild(), once). Where a rollup cannot answer — SQLite, a time zone activated for
the request that is not settings.TIME_ZONE, a filter the rollup has no column for — the callers
count the raw rows as before (None from these functions).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .filters import ReportFilters

COMPACT_AFTER = 2000  # uncompacted rows a read may meet before it compacts


def _zone() -> str | None:
    """The zone the rollups can answer for: the current one, if it is settings.TIME_ZONE."""
    if connection.vendor != "postgresql":
        return None
    zone = timezone.get_current_timezone_name()
    return zone if zone == settings.TIME_ZONE else None


def _read(zone: str, inner: str, params: list) -> list[tuple]:
    """Run `inner` (a grouped SELECT whose last column counts uncompacted rows) beside the rollups'
    zone; rebuild them first if the zone is not `zone`. Returns inner's rows without that column."""
    sql = f"SELECT z.tz, r.* FROM report_rollup_zone z LEFT JOIN LATERAL ({inner}) r ON true"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if not rows or rows[0][0] != zone:
            cursor.execute("SELECT report_rollup_rebuild(%s)", [zone])
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        rows = [row[1:] for row in rows if row[1] is not None]
        if sum(row[-1] for row in rows) > COMPACT_AFTER:
            cursor.execute("SELECT report_rollup_compact()")
    return [row[:-1] for row in rows]


def lead_counts(f: ReportFilters, unit: str) -> list[dict] | None:
    """Leads created in the range by period ("week" / "month" start, a date) and source, or None.
    Source and campaign filters apply, as on the raw count."""
    zone = _zone()
    if zone is None:
        return None
    where, params = ["d.day >= %s", "d.day <= %s"], [unit, f.date_from, f.date_to]
    if f.source:
        where.append("d.source = %s")
        params.append(f.source)
    if f.campaign:
        where.append("d.campaign_id = %s")
        params.append(f.campaign)
    inner = (
        "SELECT date_trunc(%s, d.day::timestamp)::date AS cohort, d.source, sum(d.leads)::bigint AS leads, "
        "count(*) FILTER (WHERE d.slot <> 0) AS loose "
        f"FROM report_lead_day d WHERE {' AND '.join(where)} GROUP BY 1, 2"
    )
    return [
        {"cohort": cohort, "source": source, "leads": leads}
        for cohort, source, leads in _read(zone, inner, params)
        if leads  # groups whose additions and removals cancel out: no lead
    ]


def rule_counts(f: ReportFilters) -> list[dict] | None:
    """Per rule label, over the MQLs of the range: contributions (= MQLs, one per handoff and label),
    decided, accepted and qualified ones, and the average points; or None when a source or campaign
    filter is set (the rollup has no such column)."""
    zone = _zone()
    if zone is None or f.source or f.campaign:
        return None
    where, params = ["d.day >= %s", "d.day <= %s"], [f.date_from, f.date_to]
    if f.model_version:
        where.append("d.model_version = %s")
        params.append(f.model_version)
    inner = (
        "SELECT d.label, sum(d.mqls)::bigint AS mqls, "
        "coalesce(sum(d.mqls) FILTER (WHERE d.decided), 0)::bigint, "
        "coalesce(sum(d.mqls) FILTER (WHERE d.accepted), 0)::bigint, "
        "coalesce(sum(d.mqls) FILTER (WHERE d.qualified), 0)::bigint, "
        "sum(d.points), count(*) FILTER (WHERE d.slot <> 0) AS loose "
        f"FROM report_rule_day d WHERE {' AND '.join(where)} GROUP BY 1"
    )
    return [
        {"label": label, "mqls": mqls, "decided": decided, "accepted": accepted, "sqls": sqls,
         "avg_points": points / mqls}
        for label, mqls, decided, accepted, sqls, points in _read(zone, inner, params)
        if mqls
    ]


def rebuild() -> None:
    """Recount both rollups from the raw rows (in settings.TIME_ZONE)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT report_rollup_rebuild(%s)", [settings.TIME_ZONE])


def compact() -> bool:
    """Fold every writer's rows into the compacted ones; False when another compaction runs."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT report_rollup_compact()")
        return cursor.fetchone()[0]
