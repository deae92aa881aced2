"""The floors: what each figure is compared with, measured in the same run.

- COPY: the same number of interactions, same columns and indexes, COPY'd into a scratch table.
- Scoring: ONE set-based SQL statement, generated from the active model's rules, computing every
  lead's fit, engagement and score (decay 0.5 ^ (age / half_life), windows, caps, the engine's
  rounding) into a scratch table. Rules the generator cannot express raise NotImplementedError.
- Pages: the trivial /healthz view through the same gunicorn (timed in suite.py).
- Reports: each report's bare aggregate SQL, timed directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import psycopg
from psycopg import sql

SCRATCH_COPY = "bench_floor_interactions"
SCRATCH_SCORES = "bench_floor_scores"

# --- COPY ---------------------------------------------------------------------------------------

INTERACTION_COLUMNS = ("lead_id", "kind_id", "occurred_at", "properties", "external_id", "received_at")


def copy_floor(conn: psycopg.Connection, rows: list[tuple]) -> float:
    """Seconds to COPY `rows` (INTERACTION_COLUMNS) into a fresh table shaped like leads_interaction
    (same columns, defaults, identity, constraints and indexes), committed."""
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {SCRATCH_COPY}")
        cur.execute(f"CREATE TABLE {SCRATCH_COPY} (LIKE leads_interaction INCLUDING ALL)")
    conn.commit()
    started = time.perf_counter()
    with conn.cursor() as cur:
        with cur.copy(f"COPY {SCRATCH_COPY} ({', '.join(INTERACTION_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    conn.commit()
    elapsed = time.perf_counter() - started
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE {SCRATCH_COPY}")
    conn.commit()
    return elapsed


# --- scoring in one statement ---------------------------------------------------------------------

TEXT_FIELDS = {
    "email",
    "first_name",
    "last_name",
    "job_title",
    "seniority",
    "company",
    "industry",
    "country",
    "source",
}
NUMBER_FIELDS = {"company_size", "annual_revenue"}


def _lit(value) -> sql.Composable:
    """A literal; floats as float8 (the engine's arithmetic; numeric power() is 100x slower)."""
    if isinstance(value, float):
        return sql.SQL("{}::float8").format(sql.Literal(value))
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return sql.SQL("{}::float8[]").format(sql.Literal(value))
    return sql.Literal(value)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v).strip().lower()


def normalized_text(expr: sql.Composable) -> sql.Composable:
    """rules._as_text of a value, NULL when missing (NULL or blank): lower(btrim(x))."""
    return sql.SQL("nullif(lower(btrim({})), '')").format(expr)


def condition(value_sql: sql.Composable, numeric: bool, operator: str, value) -> sql.Composable:
    """SQL that is TRUE exactly when rules.matches(operator, actual, value) holds (else FALSE or
    NULL, which a CASE treats alike). `value_sql` is the actual value, already NULL when missing:
    a number, or normalized_text(...) — so a missing value matches only is_not_set."""
    if operator == "is_not_set":
        return sql.SQL("({} IS NULL)").format(value_sql)
    if operator == "is_set":
        return sql.SQL("({} IS NOT NULL)").format(value_sql)
    values = value if isinstance(value, list) else [value]
    if numeric:
        if operator in ("gte", "lte"):
            op = sql.SQL(">=" if operator == "gte" else "<=")
            return sql.SQL("({} {} {})").format(value_sql, op, _lit(float(value)))
        if operator == "between":
            return sql.SQL("({} BETWEEN {} AND {})").format(
                value_sql, _lit(float(value[0])), _lit(float(value[1]))
            )
        if not all(_is_number(v) for v in values):
            raise NotImplementedError(f"{operator} with text values on a number field")
        test = sql.SQL("({} = ANY({}))").format(value_sql, _lit([float(v) for v in values]))
    else:
        if any(_is_number(v) for v in values) and operator in ("equals", "not_equals", "in", "not_in"):
            raise NotImplementedError(f"{operator} with a number on a text field")
        lowered = [_as_text(v) for v in values]
        if operator in ("equals", "in", "not_equals", "not_in"):
            test = sql.SQL("({} = ANY({}))").format(value_sql, _lit(lowered))
        elif operator in ("contains", "contains_any"):
            test = sql.SQL(" OR ").join(
                sql.SQL("strpos({}, {}) > 0").format(value_sql, _lit(v)) for v in lowered
            )
        elif operator == "starts_with":
            test = sql.SQL(" OR ").join(
                sql.SQL("left({}, {}) = {}").format(value_sql, _lit(len(v)), _lit(v)) for v in lowered
            )
        elif operator in ("ends_with", "ends_with_any"):
            test = sql.SQL(" OR ").join(
                sql.SQL("right({}, {}) = {}").format(value_sql, _lit(len(v)), _lit(v)) for v in lowered
            )
        else:
            raise NotImplementedError(f"operator {operator} on a text field")
    if operator in ("not_equals", "not_in"):
        return sql.SQL("(NOT {})").format(test)
    if operator in ("equals", "in", "contains", "contains_any", "starts_with", "ends_with", "ends_with_any"):
        return sql.SQL("({})").format(test)
    raise NotImplementedError(f"operator {operator} on a number field")


def _lead_field(field: str) -> tuple[sql.Composable, bool]:
    """(the field's value as conditions need it, numeric?), computed once per lead in a LATERAL."""
    if field == "email_domain":  # the part after the last "@"
        return sql.SQL("CASE WHEN strpos(l.email, '@') > 0 THEN {} END").format(
            normalized_text(sql.SQL("reverse(split_part(reverse(l.email), '@', 1))"))
        ), False
    if field in NUMBER_FIELDS:
        return sql.SQL("l.{}::float8").format(sql.Identifier(field)), True
    if field in TEXT_FIELDS:
        return normalized_text(sql.SQL("l.{}").format(sql.Identifier(field))), False
    raise NotImplementedError(f"fit field {field}")


def _behavior_sum(rule, kind_id: int, now: sql.Composable) -> sql.Composable:
    conds = [sql.SQL("i.kind_id = {}").format(_lit(kind_id))]
    if rule.within_days is not None:
        conds.append(
            sql.SQL("i.occurred_at >= {} - make_interval(secs => {})").format(
                now, _lit(float(rule.within_days) * 86400.0)
            )
        )
    if rule.property:
        cond = rule.property
        expr = normalized_text(sql.SQL("(i.properties ->> {})").format(_lit(cond["key"])))
        conds.append(condition(expr, False, cond["operator"], cond.get("value")))
    points = _lit(float(rule.points))
    if rule.half_life_days is not None:
        points = sql.SQL(
            "{} * power(0.5::float8, extract(epoch FROM ({} - i.occurred_at))::float8 / 86400.0 / {})"
        ).format(points, now, _lit(float(rule.half_life_days)))
    return sql.SQL("sum(CASE WHEN {} THEN {} END)").format(sql.SQL(" AND ").join(conds), points)


def _capped(expr: sql.Composable, max_points) -> sql.Composable:
    value = sql.SQL("coalesce({}, 0)::float8").format(expr)
    if max_points is None:
        return value
    return sql.SQL("(sign({v}) * least(abs({v}), {m}))").format(v=value, m=_lit(float(max_points)))


def _rounded(expr: sql.Composable) -> sql.Composable:
    """The engine's round_half_up: to 6 decimals through numeric, then half away from zero."""
    return sql.SQL("round(round(({})::numeric, 6))::int").format(expr)


def score_statement(spec, kind_ids: dict[str, int], now, table: str = SCRATCH_SCORES) -> sql.Composable:
    """CREATE TABLE <table> AS one SELECT computing every lead's scores under `spec` at `now`:
    per-rule columns f<n> (fit) and b<n> (behaviour, capped), fit_score, engagement_score, score."""
    now_sql = sql.SQL("{}::timestamptz").format(_lit(now))
    used = [rule for rule in spec.behavior_rules if rule.kind in kind_ids]
    beh_cols = [
        sql.SQL("{} AS s{}").format(_behavior_sum(rule, kind_ids[rule.kind], now_sql), sql.SQL(str(n)))
        for n, rule in enumerate(used)
    ] or [sql.SQL("NULL::float8 AS s0")]
    kinds = sorted({kind_ids[rule.kind] for rule in used}) or [-1]
    fields = sorted({rule.field for rule in spec.fit_rules})
    normalized = [sql.SQL("{} AS {}").format(_lead_field(f)[0], sql.Identifier(f)) for f in fields]
    fit_cols, fit_names = [], []
    for n, rule in enumerate(spec.fit_rules):
        value_sql = sql.SQL("n.{}").format(sql.Identifier(rule.field))
        cond = condition(value_sql, _lead_field(rule.field)[1], rule.operator, rule.value)
        fit_cols.append(
            sql.SQL("(CASE WHEN {} THEN {} ELSE 0 END)::float8 AS f{}").format(
                cond, _lit(float(rule.points)), sql.SQL(str(n))
            )
        )
        fit_names.append(sql.SQL("f{}").format(sql.SQL(str(n))))
    beh_parts = [
        sql.SQL("{} AS b{}").format(_capped(sql.SQL(f"beh.s{n}"), rule.max_points), sql.SQL(str(n)))
        for n, rule in enumerate(used)
    ]
    beh_names = [sql.SQL(f"b{n}") for n in range(len(used))]
    fit_sum = sql.SQL(" + ").join(fit_names) if fit_names else sql.SQL("0::float8")
    beh_sum = sql.SQL(" + ").join(beh_names) if beh_names else sql.SQL("0::float8")
    parts_cols = sql.SQL(", ").join([sql.SQL("l.id AS lead_id"), *fit_cols, *beh_parts])
    return sql.SQL(
        "CREATE TABLE {table} AS "
        "WITH beh AS (SELECT i.lead_id, {beh_cols} FROM leads_interaction i "
        "WHERE i.kind_id = ANY({kinds}) AND i.occurred_at <= {now} GROUP BY i.lead_id), "
        "parts AS MATERIALIZED (SELECT {parts_cols} FROM leads_lead l "
        "CROSS JOIN LATERAL (SELECT {normalized}) n LEFT JOIN beh ON beh.lead_id = l.id) "
        "SELECT parts.*, {fit} AS fit_score, {eng} AS engagement_score, {score} AS score FROM parts"
    ).format(
        table=sql.Identifier(table),
        beh_cols=sql.SQL(", ").join(beh_cols),
        kinds=_lit(kinds),
        now=now_sql,
        parts_cols=parts_cols,
        normalized=sql.SQL(", ").join(normalized) if normalized else sql.SQL("1"),
        fit=_rounded(fit_sum),
        eng=_rounded(beh_sum),
        score=_rounded(sql.SQL("({}) + ({})").format(fit_sum, beh_sum)),
    )


def scoring_floor(
    conn: psycopg.Connection, spec, kind_ids: dict[str, int], now, table: str = SCRATCH_SCORES
) -> float:
    """Seconds for the one statement (committed); the scratch table is left for comparisons."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    conn.commit()
    statement = score_statement(spec, kind_ids, now, table)
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.commit()
    return time.perf_counter() - started


def floor_agreement(conn: psycopg.Connection, table: str = SCRATCH_SCORES) -> tuple[int, int]:
    """(leads, leads whose stored score equals the floor's): both implement the same contract."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT count(*), count(*) FILTER (WHERE f.score = l.score) FROM {} f "
                "JOIN leads_lead l ON l.id = f.lead_id"
            ).format(sql.Identifier(table))
        )
        total, same = cur.fetchone()
    return total, same


def drop_scratch(conn: psycopg.Connection, tables: Iterable[str] = (SCRATCH_SCORES, SCRATCH_COPY)) -> None:
    with conn.cursor() as cur:
        for table in tables:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    conn.commit()


# --- reports ---------------------------------------------------------------------------------------

# The core aggregate each report page cannot avoid (its GROUP BY), as plain SQL over all data.
REPORT_SQL = {
    "funnel": """
        SELECT l.source, date_trunc('month', l.created_at) AS cohort, count(*) AS leads,
               count(*) FILTER (WHERE l.stage <> 'lead') AS reached_mql,
               count(*) FILTER (WHERE l.stage IN ('sal', 'sql', 'opportunity', 'won', 'lost')) AS reached_sal,
               count(*) FILTER (WHERE l.stage IN ('sql', 'opportunity', 'won', 'lost')) AS reached_sql
        FROM leads_lead l GROUP BY 1, 2""",
    "acceptance": """
        SELECT l.source, l.campaign_id, h.model_version, h.rejection_reason_id, count(*) AS handoffs,
               count(h.accepted_at) AS accepted
        FROM handoff_handoff h JOIN leads_lead l ON l.id = h.lead_id GROUP BY 1, 2, 3, 4""",
    "speed": """
        SELECT h.assignee_id, count(*) AS handoffs,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM h.first_action_at - h.created_at)),
               count(*) FILTER (WHERE h.first_action_at <= h.sla_due_at) AS within_sla
        FROM handoff_handoff h GROUP BY 1""",
    "velocity": """
        SELECT t.to_stage, count(*), avg(extract(epoch FROM t.at - p.at))
        FROM handoff_transition t
        JOIN handoff_transition p ON p.handoff_id = t.handoff_id AND p.to_stage = t.from_stage
        GROUP BY 1""",
    "cost": """
        SELECT c.id, c.name, c.spend, count(h.id) FILTER (WHERE h.qualified_at IS NOT NULL) AS sqls
        FROM leads_campaign c LEFT JOIN leads_lead l ON l.campaign_id = c.id
        LEFT JOIN handoff_handoff h ON h.lead_id = l.id GROUP BY 1, 2, 3""",
    "calibration": """
        SELECT width_bucket(h.score_at_mql, 0, 200, 20) AS band, count(*), count(h.accepted_at),
               count(h.qualified_at)
        FROM handoff_handoff h GROUP BY 1""",
    "rules": """
        SELECT c.label, count(*) AS handoffs, count(h.accepted_at) AS accepted
        FROM handoff_handoffcontribution c JOIN handoff_handoff h ON h.id = c.handoff_id GROUP BY 1""",
    "sdrs": """
        SELECT h.assignee_id, count(*), count(h.accepted_at), count(h.qualified_at),
               count(*) FILTER (WHERE h.closed_at IS NULL) AS open
        FROM handoff_handoff h GROUP BY 1""",
}


def report_floor(conn: psycopg.Connection, name: str) -> float:
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(REPORT_SQL[name])
        cur.fetchall()
    conn.rollback()
    return time.perf_counter() - started
