"""All report aggregation. Every figure is counted, summed or ranked in the database; Python only
combines the few result rows (weeks, sources, campaigns, bands, rules, SDRs) and divides.

Each report makes a small, fixed number of queries whatever the data size (see tests/reports/
test_query_counts.py); docs/reports.md lists the indexes they rely on.

Vocabulary (see docs/reports.md for the full definitions):
- an **MQL** is a handoff (one MQL episode of a lead); its MQL date is `Handoff.created_at`, and the
  date filter selects handoffs by it. Every later stage is counted for the MQLs of the period, whenever
  it happened (a cohort view);
- **SAL**: `accepted_at` is set; **SQL**: `qualified_at` is set; **opportunity** / **won**: the audit
  trail holds a Transition of the handoff to that stage;
- **decided**: the SDR made a first action (`first_action_at`: accept or reject); **rejected** (in
  acceptance rates): rejected before being accepted.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from fractions import Fraction

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    F,
    Field,
    FilteredRelation,
    FloatField,
    Func,
    IntegerField,
    Q,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Floor, RowNumber, TruncMonth, TruncWeek
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from leads.models import Lead, Source, Stage
from scoring.models import ScoringModel

from ..models import Handoff, HandoffContribution
from . import rollups
from .filters import ReportFilters
from .tables import (
    DURATION,
    INT,
    LIFT,
    MONEY,
    PCT,
    POINTS,
    TEXT,
    Chart,
    Column,
    Figure,
    Result,
    Table,
    chart_number,
    ratio,
)

SMALL_SAMPLE = 20  # rule effectiveness: fewer MQLs than this on either side is flagged
TOP_BAND = 100  # calibration: scores at or above this share one band ("100+")
FRACTIONS = (0.5, 0.9)  # median and p90

SOURCE_LABELS = dict(Source.choices)
NO_CAMPAIGN = "(no campaign)"
UNASSIGNED = "(unassigned)"


# --- Building blocks ------------------------------------------------------------------------------


class SecondsBetween(Func):
    """end − start in seconds, as a float (NULL when either is NULL).

    PostgreSQL: date_part('epoch', interval) is a double precision computed directly; EXTRACT(EPOCH ...)
    returns numeric since PostgreSQL 14, and casting 100,000 numerics per measure was half the cost of
    the percentile queries. Both give the same double for the microsecond timestamps stored here."""

    arity = 2
    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):  # PostgreSQL
        return super().as_sql(
            compiler, connection, template="date_part('epoch', %(expressions)s)", arg_joiner=" - ", **extra,
        )

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(
            compiler, connection, template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(", **extra,
        )


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentiles (linear interpolation between the two nearest values), all
    the fractions from one sort: percentile_cont(ARRAY[p, ...]) WITHIN GROUP (ORDER BY ...) returns
    an array of values, in the order of `fractions`."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = (
        "%(function)s(ARRAY[%(fractions)s]::double precision[]) WITHIN GROUP (ORDER BY %(expressions)s)"
    )
    output_field = Field()  # a list of floats (or None), passed through as the driver returns it

    def __init__(self, expression, fractions, **extra):
        if not all(0 <= fraction <= 1 for fraction in fractions):
            raise ValueError("fractions must be between 0 and 1")
        super().__init__(expression, fractions=", ".join(repr(float(p)) for p in fractions), **extra)


def percentiles(
    queryset, measures: dict, *, group=None, fractions=FRACTIONS, method: str | None = None
) -> dict:
    """Percentiles of one or more measures (expressions; NULLs ignored), optionally per group.

    Returns {group key: {measure: {"n": count, 0.5: value, 0.9: value}}} (group key None without a
    group; groups without any value of a measure are missing). One query on either backend:
    - PostgreSQL: `percentile_cont(p) WITHIN GROUP (ORDER BY measure)`, grouped;
    - SQLite has no percentile aggregate: each measure is numbered in order within its group
      (ROW_NUMBER() OVER (PARTITION BY group ORDER BY measure)) and only the one or two rows around
      each percentile's position are returned (UNION ALL over the measures); Python interpolates
      between them exactly as percentile_cont does: position (n − 1) × p, linear in between.
    `method` ("percentile_cont" or "window") overrides the choice, so tests can compare the two on
    PostgreSQL (the window method runs on both backends).
    """
    queryset = queryset.order_by()
    method = method or ("percentile_cont" if connection.vendor == "postgresql" else "window")
    if method == "percentile_cont":
        return _percentiles_postgresql(queryset, measures, group, fractions)
    return _percentiles_window(queryset, measures, group, fractions)


def _percentile_aggregates(measures, fractions) -> dict:
    aggregates = {}
    for name, expression in measures.items():
        aggregates[f"{name}__n"] = Count(expression)
        aggregates[f"{name}__p"] = PercentileCont(expression, fractions)
    return aggregates


def _percentile_unpack(row: dict, measures, fractions) -> dict:
    out = {}
    for name in measures:
        if row[f"{name}__n"]:
            values = {p: _ms(value) for p, value in zip(fractions, row[f"{name}__p"], strict=True)}
            out[name] = {"n": row[f"{name}__n"], **values}
    return out


def _percentiles_postgresql(queryset, measures, group, fractions) -> dict:
    aggregates = _percentile_aggregates(measures, fractions)
    if group is None:
        rows = [{"grp": None, **queryset.aggregate(**aggregates)}]
    else:
        rows = queryset.values(grp=group).annotate(**aggregates)
    result: dict = {}
    for row in rows:
        stats = _percentile_unpack(row, measures, fractions)
        if stats:
            result[_key(row["grp"])] = stats
    return result


TOTAL = "__total__"  # summarize(total=True): the key of the percentiles over every group together


def summarize(queryset, *, counts: dict, measures: dict, group=None, labels: tuple | None = None,
              total: bool = False, fractions=FRACTIONS, method: str | None = None) -> dict:
    """Counts (aggregates) and percentiles of measures together, optionally per group.

    Returns {group key: {**counts, **labels, "stats": {measure: {"n", 0.5, 0.9}}}}; no groups at all
    when nothing matched. `labels` = (model, field names): columns of the `model` row whose primary key
    is the group key (e.g. a user's name), joined to the grouped rows — after grouping, so the rows are
    sorted by the key alone, not by the key and the labels (text comparisons, for every pair of rows).
    `total` (with a group that is never NULL) adds {TOTAL: {"stats": ...}}: the percentiles over all
    the groups' rows together (when any group matched).
    On PostgreSQL it is one query (percentile_cont next to the counts; with `total`, GROUP BY ROLLUP so
    the overall percentiles come from the same scan); elsewhere the counts, then the window-function
    percentiles (skipped when nothing matched): two, and one more with `total`.
    """
    queryset = queryset.order_by()
    method = method or ("percentile_cont" if connection.vendor == "postgresql" else "window")
    together = method == "percentile_cont"
    aggregates = {**counts, **(_percentile_aggregates(measures, fractions) if together else {})}
    overall = None
    if group is None:
        rows = [queryset.aggregate(**aggregates)]
        rows = [row for row in rows if any(row[name] for name in counts)]
    elif total and together:
        rows = _rollup(queryset.values(grp=group).annotate(**aggregates))
        overall = next((row for row in rows if row["grp"] is None), None)
        rows = [row for row in rows if row["grp"] is not None]
    else:
        grouped = queryset.values(grp=group).annotate(**aggregates)
        rows = _with_labels(grouped, *labels) if labels else list(grouped)
    result = {_key(row.get("grp")): row for row in rows}
    if together:
        for row in result.values():
            row["stats"] = _percentile_unpack(row, measures, fractions)
        if total and result:
            result[TOTAL] = {"stats": _percentile_unpack(overall, measures, fractions)}
    elif result:
        stats = _percentiles_window(queryset, measures, group, fractions)
        for key, row in result.items():
            row["stats"] = stats.get(key, {})
        if total:
            result[TOTAL] = {"stats": _percentiles_window(queryset, measures, None, fractions).get(None, {})}
    return result


def _rollup(grouped) -> list[dict]:
    """The rows of a queryset grouped by one key ("grp", first in the SELECT), plus the grand total
    (grp NULL): the ORM's SQL, grouped by ROLLUP (PostgreSQL)."""
    sql, params = grouped.query.sql_with_params()
    head, _, key = sql.rpartition(" GROUP BY ")
    if key != "1":  # the ORM groups by the SELECT position; anything else is not what this expects
        raise ValueError(f"cannot add a total to a query grouped by {key!r}")
    return _dict_rows(f"{head} GROUP BY ROLLUP (1)", params)


def _dict_rows(sql: str, params) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _with_labels(grouped, model, fields) -> list[dict]:
    """The rows of a grouped queryset (the key is "grp"), each with `fields` of the `model` row whose
    primary key is the key (None when there is none). Raw SQL around the ORM's: values() would group
    by the label columns too."""
    sql, params = grouped.query.sql_with_params()
    qn = connection.ops.quote_name
    meta = model._meta
    columns = ", ".join(f"lbl.{qn(meta.get_field(name).column)} AS {qn(name)}" for name in fields)
    return _dict_rows(
        f"SELECT grouped.*, {columns} FROM ({sql}) grouped "
        f"LEFT JOIN {qn(meta.db_table)} lbl ON lbl.{qn(meta.pk.column)} = grouped.grp",
        params,
    )


def _percentiles_window(queryset, measures, group, fractions) -> dict:
    parts, params = [], []
    partition = [group] if group is not None else None
    names = list(measures)
    for index, (name, expression) in enumerate(measures.items()):
        inner = (
            queryset.annotate(pv=expression)
            .filter(pv__isnull=False)
            .annotate(
                grp=group if group is not None else Value(None, output_field=IntegerField()),
                prn=Window(RowNumber(), partition_by=partition, order_by=F("pv").asc()),
                pn=Window(Count("pk"), partition_by=partition),
            )
            .values("grp", "pv", "prn", "pn")
        )
        sql, inner_params = inner.query.sql_with_params()
        # The 1-based row numbers on either side of position (n - 1) * p, for every fraction.
        # Exact integer arithmetic, the same in SQL and below: floor((n - 1) × a / b) for p = a / b.
        near = " OR ".join(
            f"prn IN (((pn - 1) * {a}) / {b} + 1, ((pn - 1) * {a}) / {b} + 2)"
            for a, b in map(_as_ratio, fractions)
        )
        parts.append(f"SELECT {index} AS measure, grp, pv, prn, pn FROM ({sql}) ranked WHERE {near}")
        params += inner_params
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()

    found: dict = defaultdict(lambda: {"n": 0, "values": {}})
    for index, grp, value, number, n in rows:
        entry = found[(names[index], _key(grp))]
        entry["n"] = n
        entry["values"][int(number)] = value
    result: dict = {}
    for (name, key), entry in found.items():
        n, values = entry["n"], entry["values"]
        out = {"n": n}
        for fraction in fractions:
            a, b = _as_ratio(fraction)
            low, rest = divmod((n - 1) * a, b)
            below = values[low + 1]
            above = values.get(low + 2, below)
            out[fraction] = _ms(below + rest / b * (above - below))
        result.setdefault(key, {})[name] = out
    return result


def _as_ratio(fraction: float) -> tuple[int, int]:
    exact = Fraction(str(fraction)).limit_denominator(10_000)
    return exact.numerator, exact.denominator


def _ms(seconds):
    """Round to the millisecond: SQLite's julianday arithmetic is only good to ~0.1 ms."""
    return None if seconds is None else round(float(seconds), 3)


def _key(value):
    """A group key as a plain value: dates for truncated timestamps (ORM or raw SQL), else as is."""
    if isinstance(value, datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).date()
    if isinstance(value, str):
        parsed = parse_datetime(value) or parse_date(value)
        if isinstance(parsed, datetime):
            return parsed.date()
        if parsed is not None:
            return parsed
    return value


# Conditions on a handoff.
DECIDED = Q(first_action_at__isnull=False)
ACCEPTED = Q(accepted_at__isnull=False)  # reached SAL
QUALIFIED = Q(qualified_at__isnull=False)  # reached SQL
REJECTED_AS_MQL = Q(first_action_at__isnull=False, accepted_at__isnull=True)
REJECTED = Q(rejection_reason__isnull=False)  # at MQL or after acceptance
SLA_MET = Q(sla_due_at__isnull=False, first_action_at__isnull=False, first_action_at__lte=F("sla_due_at"))


def sla_breached(now) -> Q:
    """Acted after the deadline, or not acted and the deadline has passed."""
    return Q(sla_due_at__isnull=False) & (
        Q(first_action_at__gt=F("sla_due_at")) | Q(first_action_at__isnull=True, sla_due_at__lt=now)
    )


def overdue_now(now) -> Q:
    """Still waiting for the SDR's first action, deadline passed."""
    return Q(first_action_at__isnull=True, closed_at__isnull=True, sla_due_at__lt=now)


def sla_pending(now) -> Q:
    return Q(first_action_at__isnull=True, sla_due_at__gte=now)


def selected(f: ReportFilters, prefix: str = "") -> Q:
    """The condition on a handoff (reached through `prefix`, e.g. "handoff__") for the filters:
    MQL date in range, lead source / campaign, model version."""
    q = Q(**{f"{prefix}created_at__gte": f.start, f"{prefix}created_at__lt": f.end})
    if f.source:
        q &= Q(**{f"{prefix}source": f.source})
    if f.campaign:
        q &= Q(**{f"{prefix}campaign_id": f.campaign})
    if f.model_version:
        q &= Q(**{f"{prefix}model_version": f.model_version})
    return q


def handoffs(f: ReportFilters):
    """The MQLs the filters select."""
    return Handoff.objects.filter(selected(f)).order_by()


def with_stage_transitions(qs):
    """Join each handoff's transition to opportunity and to won (at most one of each: the state
    machine only moves forward), as `opp` and `won_t`."""
    return qs.annotate(
        opp=FilteredRelation("transitions", condition=Q(transitions__to_stage=Stage.OPPORTUNITY)),
        won_t=FilteredRelation("transitions", condition=Q(transitions__to_stage=Stage.WON)),
    )


def leads(f: ReportFilters):
    """Leads created in the range (source and campaign filters apply; a lead has no model version)."""
    qs = Lead.objects.filter(created_at__gte=f.start, created_at__lt=f.end)
    if f.source:
        qs = qs.filter(source=f.source)
    if f.campaign:
        qs = qs.filter(campaign_id=f.campaign)
    return qs.order_by()


def periods(f: ReportFilters, unit: str) -> list[date]:
    """Every week (Monday) or month (1st) that overlaps the range, so empty ones show too."""
    if unit == "month":
        current, out = f.date_from.replace(day=1), []
        while current <= f.date_to:
            out.append(current)
            current = (current + timedelta(days=32)).replace(day=1)
        return out
    current = f.date_from - timedelta(days=f.date_from.weekday())
    out = []
    while current <= f.date_to:
        out.append(current)
        current += timedelta(days=7)
    return out


def period_label(start: date, unit: str) -> str:
    return start.strftime("%b %Y") if unit == "month" else f"Week of {start.day} {start:%b %Y}"


def trunc(unit: str, field: str = "created_at"):
    return TruncMonth(field) if unit == "month" else TruncWeek(field)


def _add(target: dict, row: dict, keys) -> None:
    for k in keys:
        target[k] = target.get(k, 0) + (row.get(k) or 0)


def _pct_data(values) -> list:
    return [chart_number(v, PCT) for v in values]


# --- 1. Funnel ----------------------------------------------------------------------------------

STAGES = ("mqls", "sals", "sqls", "opps", "won")
STEPS = (  # conversion column, numerator, denominator, label
    ("lead_mql", "mqls", "leads", "Lead → MQL"),
    ("mql_sal", "sals", "mqls", "MQL → SAL"),
    ("sal_sql", "sqls", "sals", "SAL → SQL"),
    ("sql_opp", "opps", "sqls", "SQL → Opp."),
    ("opp_won", "won", "opps", "Opp. → Won"),
)
FUNNEL_HELP = {
    "leads": "Leads created in the period (source and campaign filters apply; the model filter does not).",
    "mqls": "Handoffs whose MQL date is in the period (a lead that became an MQL twice counts twice).",
    "sals": "Of those MQLs, how many were accepted by an SDR (accepted_at set).",
    "sqls": "Of those MQLs, how many were qualified (qualified_at set).",
    "opps": "Of those MQLs, how many moved to opportunity (audit trail: a transition to opportunity).",
    "won": "Of those MQLs, how many were won (audit trail: a transition to won).",
    "lead_mql": "MQLs ÷ leads created in the same period: a ratio of two flows, not a cohort conversion.",
    "mql_sal": "SALs ÷ MQLs of the period.",
    "sal_sql": "SQLs ÷ SALs.",
    "sql_opp": "Opportunities ÷ SQLs.",
    "opp_won": "Won ÷ opportunities (open opportunities count in the denominator).",
}


def _funnel_columns(first: Column) -> list[Column]:
    counts = [
        Column("leads", "Leads", INT, FUNNEL_HELP["leads"]),
        Column("mqls", "MQLs", INT, FUNNEL_HELP["mqls"]),
        Column("sals", "SAL", INT, FUNNEL_HELP["sals"]),
        Column("sqls", "SQL", INT, FUNNEL_HELP["sqls"]),
        Column("opps", "Opportunity", INT, FUNNEL_HELP["opps"]),
        Column("won", "Won", INT, FUNNEL_HELP["won"]),
    ]
    steps = [Column(key, label, PCT, FUNNEL_HELP[key]) for key, _, _, label in STEPS]
    return [first, *counts, *steps]


def _with_steps(row: dict) -> dict:
    for key, num, den, _ in STEPS:
        row[key] = ratio(row.get(num, 0), row.get(den, 0))
    return row


def funnel(f: ReportFilters, *, now) -> Result:
    unit = f.cohort
    # PostgreSQL: from the leads-per-day rollup (a few thousand rows, not every lead of the period).
    lead_rows = rollups.lead_counts(f, unit)
    if lead_rows is None:
        lead_rows = (
            # COUNT(*), not COUNT(id): an index on (created_at) INCLUDE (source, campaign) answers alone.
            leads(f).annotate(cohort=trunc(unit)).values("cohort", "source").annotate(leads=Count("*"))
        )
    handoff_rows = (
        with_stage_transitions(handoffs(f))
        .annotate(cohort=trunc(unit))
        .values("cohort", "source")
        .annotate(
            mqls=Count("id"),
            sals=Count("id", filter=ACCEPTED),
            sqls=Count("id", filter=QUALIFIED),
            opps=Count("opp"),
            won=Count("won_t"),
        )
    )
    by_cohort: dict = defaultdict(dict)
    by_source: dict = defaultdict(dict)
    total: dict = {}
    for row in lead_rows:
        _add(by_cohort[_key(row["cohort"])], row, ["leads"])
        _add(by_source[row["source"]], row, ["leads"])
        _add(total, row, ["leads"])
    for row in handoff_rows:
        _add(by_cohort[_key(row["cohort"])], row, STAGES)
        _add(by_source[row["source"]], row, STAGES)
        _add(total, row, STAGES)

    result = Result(empty=not total.get("mqls"))
    if result.empty:
        return result
    zero = dict.fromkeys(("leads", *STAGES), 0)
    cohort_rows = [
        _with_steps({**zero, **by_cohort.get(start, {}), "cohort": period_label(start, unit)})
        for start in periods(f, unit)
    ]
    source_rows = [
        _with_steps({**zero, **by_source[value], "source": label})
        for value, label in Source.choices
        if value in by_source
    ]
    total = _with_steps({**zero, **total})
    result.figures = [
        Figure("mqls", "MQLs", total["mqls"], INT, FUNNEL_HELP["mqls"]),
        Figure("mql_sal", "MQL → SAL", total["mql_sal"], PCT, FUNNEL_HELP["mql_sal"]),
        Figure("sal_sql", "SAL → SQL", total["sal_sql"], PCT, FUNNEL_HELP["sal_sql"]),
        Figure("sql_opp", "SQL → opportunity", total["sql_opp"], PCT, FUNNEL_HELP["sql_opp"]),
        Figure("opp_won", "Opportunity → won", total["opp_won"], PCT, FUNNEL_HELP["opp_won"]),
    ]
    cohort_label = "Month" if unit == "month" else "Week"
    result.tables = [
        Table(
            "cohorts", f"By {cohort_label.lower()} of MQL date",
            _funnel_columns(Column("cohort", cohort_label, TEXT)), cohort_rows,
            total={**total, "cohort": "Total"},
            note="Leads are counted in the period they were created; MQLs and later stages in the period of "
            "the MQL date. The first and last periods may be partial.",
        ),
        Table(
            "sources", "By source", _funnel_columns(Column("source", "Source", TEXT)), source_rows,
            total={**total, "source": "Total"},
        ),
    ]
    result.charts = [
        Chart(
            "chart-funnel", "Funnel: leads to won", "bar",
            ["Leads", "MQL", "SAL", "SQL", "Opportunity", "Won"],
            [{"label": "Count", "data": [total[k] for k in ("leads", *STAGES)]}],
            {"y": {"title": "Count", "unit": ""}},
            caption="Leads created and MQLs of the period, and how far those MQLs got.",
        ),
        Chart(
            "chart-cohorts", f"MQLs, SALs and SQLs by {cohort_label.lower()}", "bar",
            [r["cohort"].removeprefix("Week of ") for r in cohort_rows],
            [
                {"label": "MQLs", "data": [r["mqls"] for r in cohort_rows]},
                {"label": "SAL", "data": [r["sals"] for r in cohort_rows]},
                {"label": "SQL", "data": [r["sqls"] for r in cohort_rows]},
            ],
            {"y": {"title": "Count", "unit": ""}},
            caption=f"By {cohort_label.lower()} of the MQL date.",
        ),
    ]
    return result


# --- 2. Acceptance ------------------------------------------------------------------------------

ACCEPT_COUNTS = ("mqls", "decided", "accepted", "rejected")
ACCEPT_HELP = {
    "rate": "Accepted ÷ decided MQLs. Decided = the SDR accepted or rejected it; MQLs still waiting are "
    "left out. An MQL rejected after being accepted counts as accepted here.",
    "mqls": "Handoffs whose MQL date is in the period.",
    "undecided": "MQLs the SDR has not accepted or rejected yet (excluded from the rate).",
    "decided": "MQLs the SDR accepted or rejected.",
    "accepted": "MQLs accepted (reached SAL).",
    "rejected": "MQLs rejected without being accepted first.",
    "top_reason": "The most frequent rejection reason in this group (at MQL or after acceptance), "
    "with its count.",
}


def _acceptance_columns(first: Column) -> list[Column]:
    return [
        first,
        Column("mqls", "MQLs", INT, ACCEPT_HELP["mqls"]),
        Column("undecided", "Undecided", INT, ACCEPT_HELP["undecided"]),
        Column("decided", "Decided", INT, ACCEPT_HELP["decided"]),
        Column("accepted", "Accepted", INT, ACCEPT_HELP["accepted"]),
        Column("rejected", "Rejected", INT, ACCEPT_HELP["rejected"]),
        Column("rate", "Acceptance rate", PCT, ACCEPT_HELP["rate"]),
        Column("top_reason", "Top rejection reason", TEXT, ACCEPT_HELP["top_reason"]),
    ]


def _acceptance_row(counts: dict, reasons: dict | None = None, **label) -> dict:
    row = {**dict.fromkeys(ACCEPT_COUNTS, 0), **counts, **label}
    row["undecided"] = row["mqls"] - row["decided"]
    row["rate"] = ratio(row["accepted"], row["decided"])
    if reasons:
        name, count = max(reasons.items(), key=lambda item: (item[1], _neg(item[0])))
        row["top_reason"] = f"{name} ({count})"
    return row


def _neg(text: str):
    """Ties on a count go to the alphabetically first label (max() with a reversed key)."""
    return [-ord(c) for c in text]


def acceptance(f: ReportFilters, *, now, campaigns) -> Result:
    # One grouped query gives every breakdown: the groups (source × campaign × model version ×
    # reason) are few, and summing them here is cheaper than scanning the handoffs four times.
    cube = (
        handoffs(f)
        .values("source", "campaign_id", "model_version", "rejection_reason__label")
        .annotate(
            mqls=Count("id"),
            decided=Count("id", filter=DECIDED),
            accepted=Count("id", filter=ACCEPTED),
            rejected=Count("id", filter=REJECTED_AS_MQL),
            rejected_at_mql=Count("id", filter=REJECTED & Q(accepted_at__isnull=True)),
            rejected_after=Count("id", filter=REJECTED & ACCEPTED),
        )
    )
    weekly = (
        handoffs(f)
        .annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(
            mqls=Count("id"), decided=Count("id", filter=DECIDED), accepted=Count("id", filter=ACCEPTED)
        )
    )
    campaign_names = {c.pk: c.name for c in campaigns}
    groups = {"source": defaultdict(dict), "campaign": defaultdict(dict), "version": defaultdict(dict)}
    group_reasons = {name: defaultdict(dict) for name in groups}
    reasons: dict = defaultdict(dict)
    total: dict = {}
    for row in cube:
        keys = {
            "source": row["source"],
            "campaign": row["campaign_id"],
            "version": row["model_version"],
        }
        for name, key in keys.items():
            _add(groups[name][key], row, ACCEPT_COUNTS)
        _add(total, row, ACCEPT_COUNTS)
        label = row["rejection_reason__label"]
        if label:
            _add(reasons[label], row, ["rejected_at_mql", "rejected_after"])
            for name, key in keys.items():
                count = row["rejected_at_mql"] + row["rejected_after"]
                group_reasons[name][key][label] = group_reasons[name][key].get(label, 0) + count

    result = Result(empty=not total.get("mqls"))
    if result.empty:
        return result
    total_row = _acceptance_row(total)
    all_rejections = sum(r["rejected_at_mql"] + r["rejected_after"] for r in reasons.values())
    reason_rows = sorted(
        (
            {
                "reason": label,
                "at_mql": r["rejected_at_mql"],
                "after": r["rejected_after"],
                "total": r["rejected_at_mql"] + r["rejected_after"],
                "share": ratio(r["rejected_at_mql"] + r["rejected_after"], all_rejections),
            }
            for label, r in reasons.items()
        ),
        key=lambda r: (-r["total"], r["reason"]),
    )
    source_rows = [
        _acceptance_row(groups["source"][value], group_reasons["source"].get(value), group=label)
        for value, label in Source.choices
        if value in groups["source"]
    ]
    campaign_rows = sorted(
        (
            _acceptance_row(
                counts, group_reasons["campaign"].get(pk),
                group=campaign_names.get(pk, f"Campaign {pk}") if pk else NO_CAMPAIGN,
            )
            for pk, counts in groups["campaign"].items()
        ),
        key=lambda r: (r["group"] == NO_CAMPAIGN, r["group"].lower()),
    )
    version_rows = sorted(
        (
            _acceptance_row(counts, group_reasons["version"].get(v), group=v or "(none recorded)")
            for v, counts in groups["version"].items()
        ),
        key=lambda r: r["group"],
    )
    weeks = {_key(r["week"]): r for r in weekly}
    week_rows = [
        _acceptance_row(
            {k: weeks.get(start, {}).get(k, 0) for k in ("mqls", "decided", "accepted")},
            week=period_label(start, "week"),
        )
        for start in periods(f, "week")
    ]
    result.figures = [
        Figure(
            "acceptance_rate", "Acceptance rate", total_row["rate"], PCT, ACCEPT_HELP["rate"],
            detail=f"{total_row['accepted']:,} accepted of {total_row['decided']:,} decided",
        ),
        Figure("mqls", "MQLs", total_row["mqls"], INT, ACCEPT_HELP["mqls"]),
        Figure("decided", "Decided", total_row["decided"], INT, ACCEPT_HELP["decided"]),
        Figure("rejected", "Rejected as MQL", total_row["rejected"], INT, ACCEPT_HELP["rejected"]),
        Figure("undecided", "Undecided (excluded)", total_row["undecided"], INT, ACCEPT_HELP["undecided"]),
    ]
    result.tables = [
        Table(
            "reasons", "Rejection reasons",
            [
                Column("reason", "Reason", TEXT),
                Column("at_mql", "Rejected as MQL", INT, "Rejected before being accepted."),
                Column("after", "Rejected after acceptance", INT, "Accepted first (SAL), rejected later."),
                Column("total", "Total", INT, "All rejections of MQLs of the period with this reason."),
                Column("share", "Share", PCT, "This reason's share of all rejections of the period."),
            ],
            reason_rows,
            total={
                "reason": "Total",
                "at_mql": sum(r["at_mql"] for r in reason_rows),
                "after": sum(r["after"] for r in reason_rows),
                "total": all_rejections,
                "share": ratio(all_rejections, all_rejections),
            },
            empty_text="No MQL of this period has been rejected.",
        ),
        Table("by_source", "By source", _acceptance_columns(Column("group", "Source", TEXT)), source_rows,
              total={**total_row, "group": "Total"}),
        Table("by_campaign", "By campaign", _acceptance_columns(Column("group", "Campaign", TEXT)),
              campaign_rows, total={**total_row, "group": "Total"}),
        Table("by_version", "By scoring-model version",
              _acceptance_columns(Column("group", "Model version", TEXT)), version_rows,
              total={**total_row, "group": "Total"}),
        Table(
            "weekly", "By week of MQL date",
            [
                Column("week", "Week", TEXT),
                Column("mqls", "MQLs", INT, ACCEPT_HELP["mqls"]),
                Column("decided", "Decided", INT, ACCEPT_HELP["decided"]),
                Column("accepted", "Accepted", INT, ACCEPT_HELP["accepted"]),
                Column("rate", "Acceptance rate", PCT, ACCEPT_HELP["rate"]),
            ],
            week_rows,
        ),
    ]
    result.charts = [
        Chart(
            "chart-acceptance-trend", "Weekly MQLs and acceptance rate", "bar",
            [r["week"].removeprefix("Week of ") for r in week_rows],
            [
                {"label": "Acceptance rate", "type": "line", "axis": "y1",
                 "data": _pct_data(r["rate"] for r in week_rows)},
                {"label": "MQLs", "data": [r["mqls"] for r in week_rows]},
            ],
            {"y": {"title": "MQLs", "unit": ""}, "y1": {"title": "Acceptance rate", "unit": "%"}},
            caption="By week of the MQL date. Weeks without decided MQLs leave a gap in the line.",
        )
    ]
    return result


# --- 3. Speed -----------------------------------------------------------------------------------

SPEED_HELP = {
    "median": "Median time from MQL to the SDR's first action (accept or reject), over MQLs acted on.",
    "p90": "90th percentile of the same: 9 in 10 MQLs got their first action within this time.",
    "sla": "Met ÷ (met + breached). Met: first action at or before the SLA deadline. Breached: first action "
    "after it, or no action yet and the deadline has passed. MQLs still within their deadline are left out.",
    "met": "First action at or before the SLA deadline.",
    "breached": "First action after the SLA deadline, or none yet and the deadline has passed.",
    "pending": "No action yet, deadline not reached: not counted either way.",
    "overdue": "MQLs of the period still waiting for a first action whose deadline has passed, now.",
    "acted": "MQLs the SDR accepted or rejected (the base of the speed percentiles).",
}


def speed(f: ReportFilters, *, now) -> Result:
    wait = SecondsBetween(F("first_action_at"), F("created_at"))
    keys = ("mqls", "acted", "met", "breached", "pending", "overdue")
    weeks = summarize(
        handoffs(f),
        group=TruncWeek("created_at"),
        counts={
            "mqls": Count("id"),
            "acted": Count("id", filter=DECIDED),
            "met": Count("id", filter=SLA_MET),
            "breached": Count("id", filter=sla_breached(now)),
            "pending": Count("id", filter=sla_pending(now)),
            "overdue": Count("id", filter=overdue_now(now)),
        },
        measures={"wait": wait},
        total=True,  # the overall median and p90, from the same scan on PostgreSQL
    )
    overall = weeks.pop(TOTAL, {}).get("stats", {}).get("wait", {})
    total = dict.fromkeys(keys, 0)
    for row in weeks.values():
        _add(total, row, keys)
    result = Result(empty=not total["mqls"])
    if result.empty:
        return result

    def row_for(counts: dict, stats: dict, **label) -> dict:
        return {
            **dict.fromkeys(keys, 0), **{k: counts.get(k, 0) for k in keys}, **label,
            "median": stats.get(0.5), "p90": stats.get(0.9),
            "sla": ratio(counts.get("met", 0), counts.get("met", 0) + counts.get("breached", 0)),
        }

    week_rows = [
        row_for(weeks.get(start, {}), weeks.get(start, {}).get("stats", {}).get("wait", {}),
                week=period_label(start, "week"))
        for start in periods(f, "week")
    ]
    total_row = row_for(total, overall, week="Total")
    result.figures = [
        Figure("median", "Speed-to-lead, median", total_row["median"], DURATION, SPEED_HELP["median"],
               detail=f"over {total['acted']:,} MQLs acted on"),
        Figure("p90", "Speed-to-lead, p90", total_row["p90"], DURATION, SPEED_HELP["p90"]),
        Figure("sla", "SLA compliance", total_row["sla"], PCT, SPEED_HELP["sla"],
               detail=f"{total['met']:,} met, {total['breached']:,} breached"),
        Figure("overdue", "Overdue now", total["overdue"], INT, SPEED_HELP["overdue"]),
        Figure("pending", "Within SLA, waiting", total["pending"], INT, SPEED_HELP["pending"]),
    ]
    result.tables = [
        Table(
            "weekly", "By week of MQL date",
            [
                Column("week", "Week", TEXT),
                Column("mqls", "MQLs", INT),
                Column("acted", "Acted on", INT, SPEED_HELP["acted"]),
                Column("median", "Median speed-to-lead", DURATION, SPEED_HELP["median"]),
                Column("p90", "p90 speed-to-lead", DURATION, SPEED_HELP["p90"]),
                Column("met", "SLA met", INT, SPEED_HELP["met"]),
                Column("breached", "SLA breached", INT, SPEED_HELP["breached"]),
                Column("pending", "Waiting, within SLA", INT, SPEED_HELP["pending"]),
                Column("overdue", "Overdue now", INT, SPEED_HELP["overdue"]),
                Column("sla", "SLA compliance", PCT, SPEED_HELP["sla"]),
            ],
            week_rows,
            total=total_row,
        )
    ]
    result.charts = [
        Chart(
            "chart-speed-trend", "Weekly speed-to-lead and SLA compliance", "line",
            [r["week"].removeprefix("Week of ") for r in week_rows],
            [
                {"label": "Median (hours)", "data": [chart_number(r["median"], DURATION) for r in week_rows]},
                {"label": "p90 (hours)", "data": [chart_number(r["p90"], DURATION) for r in week_rows]},
                {"label": "SLA compliance", "axis": "y1", "dashed": True,
                 "data": _pct_data(r["sla"] for r in week_rows)},
            ],
            {"y": {"title": "Hours to first action", "unit": "h"},
             "y1": {"title": "SLA compliance", "unit": "%"}},
            caption="By week of the MQL date.",
        )
    ]
    return result


# --- 4. Velocity --------------------------------------------------------------------------------

VELOCITY_STAGES = (  # measure, label, from, to, definition
    ("mql_sal", "MQL → SAL", "created_at", "accepted_at",
     "From the MQL date to acceptance, for MQLs accepted."),
    ("sal_sql", "SAL → SQL", "accepted_at", "qualified_at", "From acceptance to qualification, for SQLs."),
    ("sql_opp", "SQL → opportunity", "qualified_at", "opp__at",
     "From qualification to the transition to opportunity, for opportunities."),
    ("opp_closed", "Opportunity → closed", "opp__at", "closed_at",
     "From the transition to opportunity to won or lost, for closed opportunities."),
)
VELOCITY_HELP = {
    "ratio": "Opportunities ÷ SQLs, among MQLs of the period.",
    "n": "How many MQLs made this step (the base of the percentiles).",
    "median": "Median time for the step.",
    "p90": "90th percentile: 9 in 10 made the step within this time.",
}


def velocity(f: ReportFilters, *, now) -> Result:
    summary = summarize(
        with_stage_transitions(handoffs(f)),
        counts={
            "mqls": Count("id"), "sqls": Count("id", filter=QUALIFIED), "opps": Count("opp"),
            "won": Count("won_t"), "lost": Count("id", filter=Q(outcome=Handoff.Outcome.LOST)),
        },
        measures={key: SecondsBetween(F(end), F(start)) for key, _, start, end, _ in VELOCITY_STAGES},
    ).get(None)
    result = Result(empty=not summary)
    if result.empty:
        return result
    counts, stats = summary, summary["stats"]
    rows = [
        {"stage": label, "n": stats.get(key, {}).get("n", 0), "median": stats.get(key, {}).get(0.5),
         "p90": stats.get(key, {}).get(0.9), "definition": definition}
        for key, label, _, _, definition in VELOCITY_STAGES
    ]
    sql_opp = ratio(counts["opps"], counts["sqls"])
    result.figures = [
        Figure("sql_opp_ratio", "SQL → opportunity", sql_opp, PCT, VELOCITY_HELP["ratio"],
               detail=f"{counts['opps']:,} opportunities of {counts['sqls']:,} SQLs"),
        Figure("sqls", "SQLs", counts["sqls"], INT, "MQLs of the period that were qualified."),
        Figure("opps", "Opportunities", counts["opps"], INT, "MQLs of the period that became opportunities."),
        Figure("won", "Won", counts["won"], INT, "Opportunities of the period won."),
        Figure("lost", "Lost", counts["lost"], INT, "Opportunities of the period lost."),
    ]
    result.tables = [
        Table(
            "stages", "Time in stage",
            [
                Column("stage", "Step", TEXT),
                Column("n", "Made the step", INT, VELOCITY_HELP["n"]),
                Column("median", "Median", DURATION, VELOCITY_HELP["median"]),
                Column("p90", "p90", DURATION, VELOCITY_HELP["p90"]),
                Column("definition", "Measured", TEXT),
            ],
            rows,
            note="Only completed steps count: a lead still in a stage, or rejected from it, adds no time. "
            "Recent periods therefore look faster than they will once their slow leads finish.",
        )
    ]
    return result


# --- 5. Cost ------------------------------------------------------------------------------------

COST_HELP = {
    "spend": "The campaign's total spend as recorded on the campaign (not split by date).",
    "mqls": "MQLs of the period from leads of this campaign.",
    "sqls": "Of those MQLs, how many were qualified.",
    "cost_mql": "Spend ÷ MQLs; — when there are none.",
    "cost_sql": "Spend ÷ SQLs; — when there are none (not infinity).",
}


def _cost_columns(first: Column, *extra: Column) -> list[Column]:
    return [
        first, *extra,
        Column("spend", "Spend", MONEY, COST_HELP["spend"]),
        Column("mqls", "MQLs", INT, COST_HELP["mqls"]),
        Column("sqls", "SQLs", INT, COST_HELP["sqls"]),
        Column("cost_mql", "Cost per MQL", MONEY, COST_HELP["cost_mql"]),
        Column("cost_sql", "Cost per SQL", MONEY, COST_HELP["cost_sql"]),
    ]


def _with_cost(row: dict) -> dict:
    row["cost_mql"] = ratio(row["spend"], row["mqls"])
    row["cost_sql"] = ratio(row["spend"], row["sqls"])
    return row


def cost(f: ReportFilters, *, now, campaigns) -> Result:
    """`campaigns` is the list the filter bar loaded (id, name, channel, spend, dates): reused here."""
    rows = (
        handoffs(f)
        .values("campaign_id")
        .annotate(mqls=Count("id"), sqls=Count("id", filter=QUALIFIED))
    )
    by_campaign = {row["campaign_id"]: row for row in rows}
    no_campaign = by_campaign.pop(None, {"mqls": 0})
    result = Result(empty=not by_campaign and not no_campaign["mqls"])
    if result.empty:
        return result
    channel_labels = dict(type(campaigns[0]).Channel.choices) if campaigns else {}
    shown = []
    for campaign in campaigns:
        counts = by_campaign.get(campaign.pk)
        if f.campaign and campaign.pk != f.campaign:
            continue
        # Campaigns with MQLs, and (unfiltered by source/model) campaigns that ran in the period.
        ran = (campaign.starts_on or date.min) <= f.date_to and (campaign.ends_on or date.max) >= f.date_from
        if counts is None and not (ran and campaign.spend and not f.source and not f.model_version):
            continue
        shown.append(_with_cost({
            "campaign": campaign.name,
            "channel": channel_labels.get(campaign.channel, campaign.channel),
            "dates": _dates(campaign),
            "spend": campaign.spend,
            "mqls": (counts or {}).get("mqls", 0),
            "sqls": (counts or {}).get("sqls", 0),
        }))
    shown.sort(key=lambda r: (r["cost_sql"] is None, r["cost_sql"] or 0, r["campaign"].lower()))
    channels: dict = {}
    for row in shown:
        channel = channels.setdefault(
            row["channel"], {"channel": row["channel"], "spend": 0, "mqls": 0, "sqls": 0}
        )
        _add(channel, row, ["spend", "mqls", "sqls"])
    channel_rows = sorted((_with_cost(c) for c in channels.values()), key=lambda r: r["channel"])
    total = _with_cost({k: sum(r[k] for r in shown) for k in ("spend", "mqls", "sqls")})
    result.figures = [
        Figure("cost_sql", "Cost per SQL", total["cost_sql"], MONEY,
               COST_HELP["cost_sql"] + " All campaigns shown.",
               detail=f"{total['spend']:,.2f} spend ÷ {total['sqls']:,} SQLs"),
        Figure("cost_mql", "Cost per MQL", total["cost_mql"], MONEY,
               COST_HELP["cost_mql"] + " All campaigns shown."),
        Figure("spend", "Spend", total["spend"], MONEY,
               COST_HELP["spend"] + " Sum over the campaigns shown."),
        Figure("no_campaign", "MQLs without a campaign", no_campaign["mqls"], INT,
               "MQLs of the period whose lead has no campaign: no spend to divide, not in the tables."),
    ]
    result.tables = [
        Table("by_campaign", "By campaign",
              _cost_columns(Column("campaign", "Campaign", TEXT), Column("channel", "Channel", TEXT),
                            Column("dates", "Runs", TEXT)),
              shown, total={**total, "campaign": "Total"}),
        Table("by_channel", "By channel", _cost_columns(Column("channel", "Channel", TEXT)), channel_rows,
              total={**total, "channel": "Total"}),
    ]
    result.charts = [
        Chart(
            "chart-cost-channel", "Cost per MQL and per SQL by channel", "bar",
            [r["channel"] for r in channel_rows],
            [
                {"label": "Cost per MQL", "data": [chart_number(r["cost_mql"], MONEY) for r in channel_rows]},
                {"label": "Cost per SQL", "data": [chart_number(r["cost_sql"], MONEY) for r in channel_rows]},
            ],
            {"y": {"title": "Cost", "unit": ""}},
            caption="Channels without SQLs have no cost-per-SQL bar.",
        )
    ] if channel_rows else []
    return result


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _dates(campaign) -> str:
    if campaign.starts_on and campaign.ends_on:
        return f"{_day(campaign.starts_on)} – {_day(campaign.ends_on)}"
    if campaign.starts_on:
        return f"from {_day(campaign.starts_on)}"
    if campaign.ends_on:
        return f"until {_day(campaign.ends_on)}"
    return ""


# --- 6. Score calibration -----------------------------------------------------------------------

CALIBRATION_HELP = {
    "mqls": "MQLs of the period whose score at MQL time falls in the band.",
    "rate": "Accepted ÷ decided MQLs in the band (undecided left out).",
    "sql_rate": "SQLs ÷ all MQLs in the band (MQLs still open may yet qualify).",
}


def score_band(width: int):
    """The lower bound of a score's band: floor(score / width) × width, capped at TOP_BAND."""
    lower = Floor(Cast("score_at_mql", FloatField()) / Value(float(width))) * Value(width)
    return Case(
        When(score_at_mql__gte=TOP_BAND, then=Value(TOP_BAND)),
        default=Cast(lower, IntegerField()),
        output_field=IntegerField(),
    )


def band_label(lower: int, width: int) -> str:
    return f"{TOP_BAND}+" if lower >= TOP_BAND else f"{lower}–{min(lower + width, TOP_BAND) - 1}"


def calibration(f: ReportFilters, *, now) -> Result:
    width = f.band
    rows = (
        handoffs(f)
        .annotate(band=score_band(width))
        .values("band")
        .annotate(
            mqls=Count("id"),
            decided=Count("id", filter=DECIDED),
            accepted=Count("id", filter=ACCEPTED),
            sqls=Count("id", filter=QUALIFIED),
        )
        .order_by("band")
    )
    bands = [
        {**r, "band": band_label(r["band"], width), "rate": ratio(r["accepted"], r["decided"]),
         "sql_rate": ratio(r["sqls"], r["mqls"])}
        for r in rows
    ]
    result = Result(empty=not bands)
    if result.empty:
        return result
    active = (
        ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).values("name", "mql_threshold").first()
    )
    result.context["threshold"] = active
    result.tables = [
        Table(
            "bands", f"By score band ({width} points)",
            [
                Column("band", "Score at MQL", TEXT),
                Column("mqls", "MQLs", INT, CALIBRATION_HELP["mqls"]),
                Column("decided", "Decided", INT, "MQLs the SDR accepted or rejected."),
                Column("accepted", "Accepted", INT, "MQLs accepted (reached SAL)."),
                Column("rate", "Acceptance rate", PCT, CALIBRATION_HELP["rate"]),
                Column("sqls", "SQLs", INT, "MQLs qualified (reached SQL)."),
                Column("sql_rate", "SQL rate", PCT, CALIBRATION_HELP["sql_rate"]),
            ],
            bands,
        )
    ]
    result.charts = [
        Chart(
            "chart-calibration", "Acceptance and SQL rate by score band", "bar",
            [b["band"] for b in bands],
            [
                {"label": "Acceptance rate", "type": "line", "axis": "y1",
                 "data": _pct_data(b["rate"] for b in bands)},
                {"label": "SQL rate", "type": "line", "axis": "y1",
                 "data": _pct_data(b["sql_rate"] for b in bands)},
                {"label": "MQLs", "data": [b["mqls"] for b in bands]},
            ],
            {"y": {"title": "MQLs", "unit": ""}, "y1": {"title": "Rate", "unit": "%"}},
            caption="If the score is calibrated, both lines rise from left to right.",
        )
    ]
    return result


# --- 7. Rule effectiveness ----------------------------------------------------------------------

RULES_HELP = {
    "n_with": "MQLs of the period this rule contributed points to (positive or negative) at MQL time.",
    "n_without": "MQLs of the period it did not contribute to.",
    "acc_with": "Accepted ÷ decided, among MQLs the rule contributed to.",
    "acc_without": "Accepted ÷ decided, among MQLs it did not contribute to.",
    "acc_lift": "Acceptance rate with ÷ without: above 1, sales accepts these MQLs more often.",
    "sql_with": "SQLs ÷ MQLs, among MQLs the rule contributed to.",
    "sql_without": "SQLs ÷ MQLs, among MQLs it did not contribute to.",
    "sql_lift": "SQL rate with ÷ without.",
    "avg_points": "Average points the rule gave, where it contributed.",
}


def rules(f: ReportFilters, *, now) -> Result:
    total = handoffs(f).aggregate(
        mqls=Count("id"), decided=Count("id", filter=DECIDED), accepted=Count("id", filter=ACCEPTED),
        sqls=Count("id", filter=QUALIFIED),
    )
    result = Result(empty=not total["mqls"])
    if result.empty:
        return result
    # Per rule label: the MQLs it contributed to (one contribution row per handoff and label). From the
    # contributions-per-day rollup on PostgreSQL unless a source or campaign filter is set; otherwise
    # the join of contributions and handoffs (~750,000 rows for 90 days at 1M leads).
    per_rule = rollups.rule_counts(f)
    if per_rule is None:
        per_rule = _rules_joined(f)
    rows = []
    for r in per_rule:
        without = {k: total[k] - r[k] for k in ("mqls", "decided", "accepted", "sqls")}
        acc_with = ratio(r["accepted"], r["decided"])
        acc_without = ratio(without["accepted"], without["decided"])
        sql_with, sql_without = ratio(r["sqls"], r["mqls"]), ratio(without["sqls"], without["mqls"])
        small = min(r["mqls"], without["mqls"]) < SMALL_SAMPLE
        rows.append({
            "rule": r["label"],
            "avg_points": r["avg_points"],
            "n_with": r["mqls"],
            "acc_with": acc_with,
            "sql_with": sql_with,
            "n_without": without["mqls"],
            "acc_without": acc_without,
            "sql_without": sql_without,
            "acc_lift": acc_with / acc_without if acc_with is not None and acc_without else None,
            "sql_lift": sql_with / sql_without if sql_with is not None and sql_without else None,
            "sample": f"small sample (n < {SMALL_SAMPLE})" if small else "",
            "_flag": "small-sample" if small else "",
        })
    rows.sort(key=lambda r: (bool(r["sample"]), -(r["acc_lift"] or 0), r["rule"].lower()))
    result.context["small_sample"] = SMALL_SAMPLE
    result.tables = [
        Table(
            "rules", "Rules: MQLs they contributed to vs. the rest",
            [
                Column("rule", "Rule", TEXT),
                Column("avg_points", "Avg. points", POINTS, RULES_HELP["avg_points"]),
                Column("n_with", "MQLs with", INT, RULES_HELP["n_with"]),
                Column("acc_with", "Acceptance with", PCT, RULES_HELP["acc_with"]),
                Column("n_without", "MQLs without", INT, RULES_HELP["n_without"]),
                Column("acc_without", "Acceptance without", PCT, RULES_HELP["acc_without"]),
                Column("acc_lift", "Acceptance lift", LIFT, RULES_HELP["acc_lift"]),
                Column("sql_with", "SQL rate with", PCT, RULES_HELP["sql_with"]),
                Column("sql_without", "SQL rate without", PCT, RULES_HELP["sql_without"]),
                Column("sql_lift", "SQL lift", LIFT, RULES_HELP["sql_lift"]),
                Column("sample", "Note", TEXT,
                       f"Flagged when fewer than {SMALL_SAMPLE} MQLs are on either side: read with care."),
            ],
            rows,
            empty_text="No MQL of this period has a recorded score breakdown.",
        )
    ]
    return result


def _rules_joined(f: ReportFilters):
    """Per rule label, from the contributions joined to the MQLs the filters select."""
    return (
        HandoffContribution.objects.filter(selected(f, "handoff__"))
        .values("label")
        .annotate(
            mqls=Count("handoff_id"),
            decided=Count("handoff_id", filter=Q(handoff__first_action_at__isnull=False)),
            accepted=Count("handoff_id", filter=Q(handoff__accepted_at__isnull=False)),
            sqls=Count("handoff_id", filter=Q(handoff__qualified_at__isnull=False)),
            avg_points=Avg("points"),
        )
        .order_by()
    )


# --- 8. Per SDR ---------------------------------------------------------------------------------

SDR_HELP = {
    "received": "MQLs of the period assigned to the SDR (current assignee).",
    "accepted": "Of those, accepted (reached SAL).",
    "rejected": "Of those, rejected (as MQL or after acceptance).",
    "qualified": "Of those, qualified (reached SQL).",
    "rate": "Accepted ÷ decided (decided = accepted or rejected as MQL).",
    "median": SPEED_HELP["median"],
    "p90": SPEED_HELP["p90"],
    "sla": SPEED_HELP["sla"],
    "overdue": SPEED_HELP["overdue"],
}


def _person(row) -> str:
    if row["grp"] is None:
        return UNASSIGNED
    name = f"{row['first_name']} {row['last_name']}".strip()
    return f"{name} ({row['username']})" if name else row["username"]


def sdrs(f: ReportFilters, *, now) -> Result:
    keys = ("received", "decided", "accepted", "rejected", "qualified", "met", "breached", "overdue")
    grouped = summarize(
        handoffs(f),
        group=F("assignee_id"),
        labels=(Handoff._meta.get_field("assignee").related_model, ("username", "first_name", "last_name")),
        counts={
            "received": Count("id"),
            "decided": Count("id", filter=DECIDED),
            "accepted": Count("id", filter=ACCEPTED),
            "rejected": Count("id", filter=REJECTED),
            "qualified": Count("id", filter=QUALIFIED),
            "met": Count("id", filter=SLA_MET),
            "breached": Count("id", filter=sla_breached(now)),
            "overdue": Count("id", filter=overdue_now(now)),
        },
        measures={"wait": SecondsBetween(F("first_action_at"), F("created_at"))},
    )
    result = Result(empty=not grouped)
    if result.empty:
        return result
    overall = {}

    def finish(row: dict, stats: dict) -> dict:
        row["rate"] = ratio(row["accepted"], row["decided"])
        row["sla"] = ratio(row["met"], row["met"] + row["breached"])
        row["median"], row["p90"] = stats.get(0.5), stats.get(0.9)
        return row

    rows = []
    for r in grouped.values():
        _add(overall, r, keys)
        rows.append(finish({"sdr": _person(r), **{k: r[k] for k in keys}}, r["stats"].get("wait", {})))
    rows.sort(key=lambda r: (r["sdr"] == UNASSIGNED, r["sdr"].lower()))
    total = finish({"sdr": "All", **overall}, {})
    result.tables = [
        Table(
            "sdrs", "By SDR",
            [
                Column("sdr", "SDR", TEXT),
                Column("received", "Received", INT, SDR_HELP["received"]),
                Column("accepted", "Accepted", INT, SDR_HELP["accepted"]),
                Column("rejected", "Rejected", INT, SDR_HELP["rejected"]),
                Column("qualified", "Qualified", INT, SDR_HELP["qualified"]),
                Column("rate", "Acceptance rate", PCT, SDR_HELP["rate"]),
                Column("median", "Median speed-to-lead", DURATION, SDR_HELP["median"]),
                Column("p90", "p90 speed-to-lead", DURATION, SDR_HELP["p90"]),
                Column("sla", "SLA compliance", PCT, SDR_HELP["sla"]),
                Column("overdue", "Overdue now", INT, SDR_HELP["overdue"]),
            ],
            rows,
            total=total,
            note="The total row leaves speed-to-lead empty: see the Speed report for the overall figures.",
        )
    ]
    return result
