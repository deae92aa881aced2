"""Scoring a chunk of leads entirely in PostgreSQL: the engine's formula as one SQL statement.

A bulk run (scoring/bulk.py) calls `rescore()` once per chunk. That one statement reads the chunk's
leads and their interactions, computes each lead's fit (a CASE per fit rule), each behaviour rule's
decayed and windowed sum, the caps, the totals with the engine's rounding and the breakdown JSON,
compares them with the stored values, writes back only the leads that changed (or must be written
anyway), and returns the leads that now qualify for promotion. No Python runs per lead.

It gives the engine's exact answer, or says it cannot for a lead:

- Text is normalised like `rules._as_text` (`str.strip().lower()`): `btrim` with Python's own set of
  whitespace characters, then `lower(x COLLATE "C")` (ASCII only, whatever the database's locale)
  after a `translate` of every non-ASCII capital to Python's lower case (tables built from
  `str.lower` itself). The one context-dependent case, Greek capital sigma (final "ς" or "σ"), is
  not done in SQL.
- Numbers compare as float8, like Python floats: numeric → float8 casts and IEEE arithmetic are
  correctly rounded on both sides, and a rule without decay sums to n × points, the very float
  `math.fsum` gives. What can differ is a decayed sum: the order of additions (the engine's
  `math.fsum` is exact, SQL adds as it goes), the age (`date_part`: a few roundings away from
  Python's exact `total_seconds()`), and `power()` should the two use different C libraries. So
  every lead carries an error bound E for its totals, and a value counts only when everything
  within E of it rounds the same way (`round(round(x::numeric, 6))` is monotonic, so the distance
  to the nearest 6-decimal half-way point decides).
- Leads for which SQL cannot guarantee the engine's result are returned instead of written, for the
  caller to score with the engine (`Outcome.python`). That happens when:
  1. a fit rule compares text of a lead field that contains "Σ";
  2. a counted interaction's property value cannot be classified exactly as Python would: a
     non-integer JSON number, list or object under a text comparison (unless no such value could
     match), "Σ" in a text comparison, a text number with non-ASCII digits, more than 100
     characters or an exponent beyond ±99 under a numeric comparison, a JSON number of more than
     100 characters, or `properties` that is not a JSON object;
  3. a total or a behaviour rule's contribution is within E of a rounding boundary, or 10^7 or more.
  In practice that is next to none: 0 of the benchmark's 100,000 leads.

Not expressible at all (`unsupported()` says why; the caller then uses the previous path): rules
that fail `rules.validate_fit_rule` / `rules.validate_property_condition`, which the admin, the API
and the importer never store. Everything valid is expressed: every operator on every field, and
property conditions with text, numeric or mixed values.
"""

from __future__ import annotations

import array
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

from django.db import connection, transaction

from leads.models import Interaction, Lead
from leads.sqlparams import bigint_array

from . import engine, rules

# --------------------------------------------------------------------------------------------------
# Python's text semantics, as data SQL can use
# --------------------------------------------------------------------------------------------------

SIGMA = "\u03a3"  # lower-cased by context in Python (final "ς"), so never lower-cased in SQL
DOTTED_I = "\u0130"  # the only character whose Python lower case is two characters ("i̇")
ASCII_WHITESPACE = "".join(chr(c) for c in range(128) if chr(c).isspace())


@dataclass(frozen=True)
class _Tables:
    whitespace: str  # every character str.strip() removes
    upper: str  # non-ASCII characters str.lower() maps to one other character (not Σ, İ)...
    lower: str  # ...and what it maps them to: translate(x, upper, lower)
    number_chars: str  # regex class body: what float() may accept in a string besides ASCII


@cache
def tables() -> _Tables:
    """Built once per process from Python's own str methods (≈0.1 s), so SQL follows this
    Python's Unicode version exactly."""
    codes = (
        array.array("I", range(0x80, 0xD800)).tobytes() + array.array("I", range(0xE000, 0x110000)).tobytes()
    )
    everything = codes.decode("utf-32-le")
    upper, lower = [], []
    for start in range(0, len(everything), 512):
        block = everything[start : start + 512]
        if block.lower() == block:
            continue
        for ch in block:
            low = ch.lower()
            if low != ch and len(low) == 1 and ch != SIGMA:
                upper.append(ch)
                lower.append(low)
    whitespace = ASCII_WHITESPACE + "".join(re.findall(r"\s", everything))
    # float() turns other whitespace into spaces and decimal digits (Nd) of any script into ASCII
    # digits before parsing; any other non-ASCII character makes it fail.
    digits = re.findall(r"\d", everything)
    number_chars = "\\x01-\\x7f" + "".join(re.findall(r"\s", everything)) + "".join(digits)
    return _Tables("".join(sorted(set(whitespace))), "".join(upper), "".join(lower), number_chars)


# A text number SQL converts itself: ASCII float syntax, at most 100 characters and a two-digit
# exponent, so float8in can neither overflow nor underflow (Python would give inf or 0.0 there).
SAFE_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,2})?$"
ANY_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
NON_FINITE = r"^[+-]?([iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])$"
INTEGER = r"^-?[0-9]+$"  # how PostgreSQL prints an integral JSON number: also Python's str(int)
# Python's str() of a float: digits, ".", "e", signs, or inf/nan. A text rule value that cannot
# look like this never equals a non-integer number's text.
FLOAT_TEXT = re.compile(r"[-+0-9.e]+|-?inf|nan")
SENTINEL = "\x01"  # stands for "some text no rule value equals"

TWO_TO_MINUS_50 = 2.0**-50  # 8 units in the last place of a float8: the error bound's unit
SAFE_LIMIT = 1e7  # from here on, 15 significant digits come close to the 6th decimal: use Python


class Unsupported(Exception):
    """The model has a rule this module cannot express exactly."""


def unsupported(spec: engine.ModelSpec) -> str | None:
    """Why `spec` cannot be scored in SQL, or None when it can."""
    for rule in spec.fit_rules:
        errors = rules.validate_fit_rule(rule.field, rule.operator, rule.value)
        if errors:
            return f'fit rule "{rule.label}": ' + "; ".join(errors.values())
    for rule in spec.behavior_rules:
        if rule.property:
            errors = rules.validate_property_condition(rule.property)
            if errors:
                return f'behaviour rule "{rule.label}": ' + "; ".join(errors.values())
    return None


# --------------------------------------------------------------------------------------------------
# SQL building blocks
# --------------------------------------------------------------------------------------------------


class _Params(dict):
    """Named query parameters: `q(value, "float8")` → "%(p3)s::float8"."""

    def __call__(self, value, cast: str) -> str:
        name = f"p{len(self)}"
        self[name] = value
        return f"%({name})s::{cast}"

    def named(self, name: str, value, cast: str) -> str:
        self[name] = value
        return f"%({name})s::{cast}"


def _ws(q: _Params) -> str:
    return q.named("ws", tables().whitespace, "text")


def _is_ascii(x: str) -> str:
    return f"(octet_length({x}) = char_length({x}))"


def normalized_text(x: str, q: _Params) -> str:
    """`rules._as_text(x)`, NULL when missing (NULL or blank). ASCII strings take the short path."""
    t = tables()
    up, low = q.named("upper", t.upper, "text"), q.named("lower", t.lower, "text")
    ascii_ws = q.named("ascii_ws", ASCII_WHITESPACE, "text")
    return (
        f"(CASE WHEN {_is_ascii(x)} THEN nullif(lower(btrim({x}, {ascii_ws}) COLLATE \"C\"), '') "
        f"ELSE nullif(lower(translate(replace(btrim({x}, {_ws(q)}), '{DOTTED_I}', 'i\u0307'), {up}, {low}) "
        f"COLLATE \"C\"), '') END)"
    )


def _has_sigma(x: str) -> str:
    return f"({_is_ascii(x)} IS FALSE AND strpos({x}, '{SIGMA}') > 0)"


def _text_test(tv: str, operator: str, values: list[str], q: _Params) -> str:
    """TRUE when the normalised text `tv` (not NULL) passes `operator` with normalised values."""
    if operator == "in":  # also equals and the negated ones: see _condition
        return f"({tv} = ANY({q(values, 'text[]')}))"
    if operator in ("contains", "contains_any"):
        tests = [f"strpos({tv}, {q(v, 'text')}) > 0" for v in values]
    elif operator == "starts_with":
        tests = [f"left({tv}, {len(v)}) = {q(v, 'text')}" for v in values]
    elif operator in ("ends_with", "ends_with_any"):
        tests = [f"right({tv}, {len(v)}) = {q(v, 'text')}" for v in values]
    else:
        raise Unsupported(f"operator {operator} on text")
    return "(" + " OR ".join(tests) + ")"


def _number_test(nv: str, operator: str, values: list[float], q: _Params) -> str:
    """TRUE when the float8 `nv` (not NULL) passes `operator` with the values."""
    if operator == "in":  # also equals and the negated ones: see _condition
        return f"({nv} = ANY({q(values, 'float8[]')}))"
    if operator == "gte":
        return f"({nv} >= {q(values[0], 'float8')})"
    if operator == "lte":
        return f"({nv} <= {q(values[0], 'float8')})"
    if operator == "between":
        return f"({nv} BETWEEN {q(values[0], 'float8')} AND {q(values[1], 'float8')})"
    raise Unsupported(f"operator {operator} on a number")


def _split_values(operator: str, value) -> tuple[list[str], list[float]]:
    """The rule's values as (normalised texts, floats): `rules._equal` compares each item by its
    own type, so a property condition's list may hold both."""
    if operator in rules.PRESENCE_OPERATORS:
        return [], []
    items = list(value) if operator in rules.LIST_OPERATORS | rules.RANGE_OPERATORS else [value]
    texts = [rules._as_text(v) for v in items if not rules.is_number(v)]
    numbers = [float(v) for v in items if rules.is_number(v)]
    return texts, numbers


def _condition(operator: str, value, missing: str, tv: str | None, nv: str | None, q: _Params) -> str:
    """SQL that is TRUE exactly when `rules.matches(operator, actual, value)` holds, given the actual
    value's missingness and its text (tv) and numeric (nv) views; FALSE or NULL otherwise."""
    if operator == "is_not_set":
        return f"({missing})"
    if operator == "is_set":
        return f"(NOT {missing})"
    texts, numbers = _split_values(operator, value)
    if operator in rules.NUMBER_ONLY_OPERATORS:
        return f"(NOT {missing} AND {nv} IS NOT NULL AND {_number_test(nv, operator, numbers, q)})"
    if operator in rules.TEXT_ONLY_OPERATORS:
        return f"(NOT {missing} AND {tv} IS NOT NULL AND {_text_test(tv, operator, texts, q)})"
    # equals / in / not_equals / not_in: text items by text, number items numerically.
    hits = []
    if texts:
        hits.append(f"coalesce({_text_test(tv, 'in', texts, q)}, false)")
    if numbers:
        hits.append(f"coalesce({_number_test(nv, 'in', numbers, q)}, false)")
    hit = "(" + " OR ".join(hits) + ")"
    if operator in ("equals", "in"):
        return f"(NOT {missing} AND {hit})"
    # not_equals / not_in: a number item needs a numeric actual (`rules._comparable`).
    comparable = f" AND {nv} IS NOT NULL" if numbers else ""
    known = f" AND {tv} IS NOT NULL" if texts else ""
    return f"(NOT {missing}{comparable}{known} AND NOT {hit})"


# --- lead fields ------------------------------------------------------------------------------------


def _lead_field(name: str, q: _Params) -> tuple[str, str]:
    """(the field as conditions need it: normalised text or float8, NULL when missing;
    TRUE when Python would lower-case it differently)."""
    if name in ("company_size", "annual_revenue"):
        return f"l.{name}::float8", "false"
    if name == "email_domain":  # engine.email_domain: after the last "@", stripped, lower-cased
        raw = "reverse(split_part(reverse(l.email), '@', 1))"
        return f"(CASE WHEN strpos(l.email, '@') > 0 THEN {normalized_text(raw, q)} END)", _has_sigma(raw)
    if rules.LEAD_FIELDS.get(name) == rules.TEXT:
        return normalized_text(f"l.{name}", q), _has_sigma(f"l.{name}")
    raise Unsupported(f"fit field {name}")


def _field_columns(fit_rules, q: _Params) -> tuple[list[str], list[str]]:
    """(each lead field these rules test, normalised once as column f_<field>; for the fields a rule
    compares as text, the test for a "Σ" SQL cannot lower-case like Python)."""
    cols, sigmas = [], []
    for name in sorted({rule.field for rule in fit_rules}):
        value_sql, sigma = _lead_field(name, q)
        cols.append(f"{value_sql} AS f_{name}")
        if any(r.field == name and r.operator not in rules.PRESENCE_OPERATORS for r in fit_rules):
            sigmas.append(sigma)
    return cols, sigmas


def _fit_condition(rule: engine.FitRuleSpec, q: _Params, table: str) -> str:
    col = f"{table}.f_{rule.field}"
    if rules.LEAD_FIELDS[rule.field] == rules.NUMBER:
        return _condition(rule.operator, rule.value, f"({col} IS NULL)", None, col, q)
    return _condition(rule.operator, rule.value, f"({col} IS NULL)", col, None, q)


# --- interaction properties ---------------------------------------------------------------------------


def _property_condition(cond: dict, q: _Params) -> tuple[str, str]:
    """(TRUE when the interaction's property satisfies `cond` as `rules.matches` says,
    TRUE when SQL cannot tell: the lead is then scored in Python)."""
    op, value = cond["operator"], cond.get("value")
    key = q(cond["key"], "text")
    jt = f"jsonb_typeof(i.properties -> {key})"
    jv = f"(i.properties ->> {key})"
    ws = _ws(q)
    # (fact.properties or {}).get(key) raises in Python for a non-empty list, text or number.
    odd = (
        "(jsonb_typeof(i.properties) NOT IN ('object', 'null') AND i.properties NOT IN "
        "('[]'::jsonb, '\"\"'::jsonb, '0'::jsonb, 'false'::jsonb))"
    )
    missing = f"({jt} IS NULL OR {jt} = 'null' OR ({jt} = 'string' AND btrim({jv}, {ws}) = ''))"
    if op in rules.PRESENCE_OPERATORS:
        return _condition(op, value, missing, None, None, q), odd

    texts, numbers = _split_values(op, value)
    equality = op in ("equals", "in", "not_equals", "not_in")
    sentinel = q.named("sentinel", SENTINEL, "text")
    # Text view: Python's str(value).strip().lower(). A non-integer number or a list/object has a
    # Python text SQL does not build; when no rule value could equal it, any non-matching text
    # stands in for it (the sentinel), else the lead goes to Python.
    number_never_equal = (
        equality and SENTINEL not in texts and not any(FLOAT_TEXT.fullmatch(t) for t in texts)
    )
    container_never_equal = equality and SENTINEL not in texts and not any(t[:1] in "[{" for t in texts)
    integer = f"({jv} ~ {q.named('integer_re', INTEGER, 'text')})"
    tv = (
        f"(CASE {jt} WHEN 'string' THEN {normalized_text(jv, q)} WHEN 'boolean' THEN {jv} "
        f"WHEN 'number' THEN CASE WHEN {integer} THEN {jv} "
        f"{'ELSE ' + sentinel if number_never_equal else ''} END "
        f"{'ELSE ' + sentinel if container_never_equal else ''} END)"
    )
    text_unknown = (
        f"(({jt} = 'string' AND {_has_sigma(jv)})"
        + ("" if number_never_equal else f" OR ({jt} = 'number' AND NOT {integer})")
        + ("" if container_never_equal else f" OR {jt} IN ('array', 'object')")
        + ")"
    )
    # Numeric view: rules._as_number. JSON numbers as PostgreSQL prints them (Python reads that same
    # text); text parsed when it is plain ASCII float syntax; booleans, lists, objects: not numbers.
    trimmed = f"btrim({jv}, {ws})"
    safe = f"({trimmed} ~ {q.named('safe_number_re', SAFE_NUMBER, 'text')} AND length({trimmed}) <= 100)"
    nv = (
        f"(CASE {jt} WHEN 'number' THEN CASE WHEN length({jv}) <= 100 THEN {jv}::float8 END "
        f"WHEN 'string' THEN CASE WHEN strpos({jv}, '_') = 0 AND {safe} THEN {trimmed}::float8 END END)"
    )
    number_chars = q.named("number_chars_re", f"[^{tables().number_chars}]", "text")
    string_unknown = (
        f"(strpos({jv}, '_') = 0 AND NOT {safe} "
        f"AND NOT {trimmed} ~ {q.named('non_finite_re', NON_FINITE, 'text')} "
        f"AND CASE WHEN {_is_ascii(jv)} THEN {trimmed} ~ {q.named('any_number_re', ANY_NUMBER, 'text')} "
        f"ELSE NOT {jv} ~ {number_chars} END)"
    )
    number_unknown = f"(({jt} = 'number' AND length({jv}) > 100) OR ({jt} = 'string' AND {string_unknown}))"

    match = _condition(op, value, missing, tv, nv, q)
    unknowns = []
    if texts:
        unknowns.append(text_unknown)
    if numbers:
        unknowns.append(number_unknown)
    unknown = f"({odd} OR (NOT {missing} AND ({' OR '.join(unknowns) or 'false'})))"
    return match, unknown


# --------------------------------------------------------------------------------------------------
# The statement
# --------------------------------------------------------------------------------------------------


def _build(
    spec: engine.ModelSpec, kind_ids: dict[str, int], now: datetime, q: _Params, *, refit: bool = False,
    whole_range: bool = False, pick: list[engine.FitRuleSpec] | None = None,
) -> str:
    """CTEs `beh` (and `behp`, for rules with a property condition) and `res`: one row of `res`
    per lead in %(ids)s with its new score, fit_score, engagement_score, breakdown (jsonb),
    engagement total `eng_t` and its bound `err`, whether they differ from the stored values
    (`differs`), whether it `qualifies`, and `python` (SQL cannot vouch for the engine's result).

    whole_range: %(ids)s are all the leads with ids in [%(lo)s, %(hi)s] (no need to test each id
    against a 10,000-element array: a tenth of a chunk's time).

    refit: the behaviour rules are those the lead's stored engagement total and breakdown were
    computed with (%(basis)s, checked per lead): only fit is computed again, and engagement comes
    from the stored total and breakdown, so no interaction is read (`res` only; `python` also marks
    leads stored under other behaviour rules, for a full rescore). With `pick` (the fit rules an
    edit changed, old and new versions), a refit starts with CTE `picked`: the leads with ids in
    [%(lo)s, %(hi)s] whose score the edit can change (`_picked`); `res` holds those of them it could
    lock (SKIP LOCKED; locking in the statement returns each row's latest version).

    `res` is a chain of subqueries, each computing what the next needs once: `OFFSET 0` keeps
    PostgreSQL from merging them (which would evaluate shared expressions again at each use)."""
    lead_table, interaction_table = Lead._meta.db_table, Interaction._meta.db_table
    now_sql = q.named("now", now, "timestamptz")
    behavior = [rule for rule in spec.behavior_rules if rule.kind in kind_ids]
    decayed = [j for j, rule in enumerate(behavior) if rule.half_life_days is not None]

    # beh: per lead, per behaviour rule, the matching interactions' count or decayed sum. Rules
    # with a property condition are summed apart (behp), over their kinds' rows only: beh then
    # reads nothing but lead, kind and time, all in the (lead, kind, occurred_at) index, so
    # PostgreSQL answers it from the index alone instead of a heap row per interaction.
    aggregates = ["count(*) AS n_all", "min(i.occurred_at) AS oldest"]
    property_aggregates = []
    for j, rule in enumerate(behavior):
        into = property_aggregates if rule.property else aggregates
        base = [f"i.kind_id = {q(kind_ids[rule.kind], 'bigint')}"]
        if rule.within_days is not None:
            cutoff = now - timedelta(days=float(rule.within_days))  # the engine's own expression
            base.append(f"i.occurred_at >= {q(cutoff, 'timestamptz')}")
        match = list(base)
        if rule.property:
            prop_match, prop_unknown = _property_condition(rule.property, q)
            match.append(prop_match)
            into.append(f"bool_or({prop_unknown}) FILTER (WHERE {' AND '.join(base)}) AS u{j}")
        where = " AND ".join(match)
        if rule.half_life_days is None:
            into.append(f"count(*) FILTER (WHERE {where}) AS n{j}")
        else:
            # engine.decayed_points: points * 0.5 ** (age_days / half_life). Beyond 1000
            # half-lives power() would underflow (an error in PostgreSQL): the term is < 1e-301
            # either way, far inside the error bound.
            y = f"({_age_days(now_sql, 'i.occurred_at')} / {q(float(rule.half_life_days), 'float8')})"
            term = f"{q(float(rule.points), 'float8')} * power(0.5::float8, least({y}, 1000::float8))"
            into.append(f"sum({term}) FILTER (WHERE {where}) AS s{j}")

    def summed(name: str, columns: list[str], rules) -> str:
        kinds = sorted({kind_ids[rule.kind] for rule in rules}) or [-1]
        return (
            f"{name} AS (SELECT i.lead_id, {', '.join(columns)} FROM {interaction_table} i "
            "WHERE i.lead_id BETWEEN %(lo)s::bigint AND %(hi)s::bigint "
            # Scattered ids (a backlog drain's set): read only their interactions, not the range's.
            + ("" if whole_range else "AND i.lead_id = ANY(%(ids)s::bigint[]) ")
            + f"AND i.kind_id = ANY({q(kinds, 'bigint[]')}) AND i.occurred_at <= {now_sql} GROUP BY i.lead_id)"
        )

    with_property = [rule for rule in behavior if rule.property]
    beh = None if refit else summed("beh", aggregates, behavior) + (
        ",\n" + summed("behp", property_aggregates, with_property) if with_property else ""
    )

    # a: the leads, their stored scores, and each field fit rules use, normalised once.
    field_cols, sigma_flags = _field_columns(spec.fit_rules, q)
    in_chunk = "l.id BETWEEN %(lo)s::bigint AND %(hi)s::bigint " + (
        "" if whole_range else "AND l.id = ANY(%(ids)s::bigint[]) "
    )
    threshold = q(float(spec.mql_threshold), "float8")
    source = f"{lead_table} l"
    if pick is not None:
        source = (
            f"(SELECT * FROM {lead_table} WHERE id BETWEEN %(lo)s::bigint AND %(hi)s::bigint "
            "AND id IN (SELECT id FROM picked WHERE wanted) FOR NO KEY UPDATE SKIP LOCKED) l"
        )
    kept = "id, stage, stage_changed_at, scored_at, old_score, old_fit, old_eng, old_breakdown, old_basis"
    a = (
        "SELECT l.id, l.stage, l.stage_changed_at, l.scored_at, l.score AS old_score, "
        "l.fit_score AS old_fit, l.engagement_score AS old_eng, l.score_breakdown AS old_breakdown, "
        "l.engagement_basis AS old_basis, l.engagement_total AS old_total, l.engagement_error AS old_error, "
        f"({' OR '.join(sigma_flags) or 'false'}) AS lead_unknown"
        + "".join(", " + c for c in field_cols)
        # The range lets PostgreSQL read just the chunk's part of the primary key, not the table.
        + f" FROM {source} WHERE {in_chunk}OFFSET 0"
    )

    # b: each rule's contribution as the engine has it before rounding (fit: points or 0;
    # behaviour: the capped sum), and the part of the error bound E that comes from the sums.
    # The bound (see the module docstring), in units of 2^-50 (8 float8 roundings):
    # - a decayed rule's SQL sum is within |s|·(n + 16 + 2·y_max)·2^-50 of the engine's fsum: n
    #   additions in another order, plus each term's own difference (same-sign terms, so Σ|t| = |s|):
    #   the age (`date_part`: a few roundings away from Python's exact seconds) moves 0.5^y by
    #   ln 2 · y times its relative error, and power()/the multiplications by a few roundings;
    # - a rule without decay has n equal terms: n × points, correctly rounded on both sides, so the
    #   same float as the engine's;
    # - capping cannot increase a difference; the totals add a rounding per term (level c).
    cols = [
        f"(CASE WHEN {_fit_condition(rule, q, 'a')} THEN {q(float(rule.points), 'float8')} "
        f"ELSE 0::float8 END) AS f{k}"
        for k, rule in enumerate(spec.fit_rules)
    ]
    fit_names = [f"f{k}" for k in range(len(spec.fit_rules))]
    fit_total = " + ".join(fit_names) or "0::float8"
    if refit:
        b, c = _refit_levels(spec, behavior, cols, kept, a, fit_names, fit_total, q)
    else:
        errors, unknowns = [], []
        for j, rule in enumerate(behavior):
            src = "behp" if rule.property else "beh"
            if rule.half_life_days is None:
                s = f"(coalesce({src}.n{j}, 0)::float8 * {q(float(rule.points), 'float8')})"
            else:
                s = f"coalesce({src}.s{j}, 0::float8)"
                half_life = q(float(rule.half_life_days), "float8")
                y_max = f"coalesce({_age_days(now_sql, 'beh.oldest')} / {half_life}, 0)"
                errors.append(f"abs({s}) * (coalesce(beh.n_all, 0) + 16 + 2 * {y_max})")
            if rule.max_points is None:
                cols.append(f"{s} AS c{j}")
            else:  # engine._capped: the cap bounds the size, so a negative rule bottoms out at -max
                cols.append(f"sign({s}) * least(abs({s}), {q(float(rule.max_points), 'float8')}) AS c{j}")
            if rule.property:
                unknowns.append(f"coalesce(behp.u{j}, false)")
        b = (
            f"SELECT {', '.join('a.' + c for c in kept.split(', '))}, a.lead_unknown, "
            f"({' OR '.join(unknowns) or 'false'}) AS property_unknown, "
            f"({' + '.join(errors) or '0'}) * {TWO_TO_MINUS_50} AS err_sums, {', '.join(cols) or '0 AS nothing'} "
            f"FROM ({a}) a LEFT JOIN beh ON beh.lead_id = a.id "
            + ("LEFT JOIN behp ON behp.lead_id = a.id " if with_property else "")
            + "OFFSET 0"
        )

        # c: totals (fit + engagement, as engine.assemble adds them), the whole bound E, and each
        # behaviour rule's breakdown points (engine.round_points), NULL when they round to 0.00.
        beh_names = [f"c{j}" for j in range(len(behavior))]
        eng_total = " + ".join(beh_names) or "0::float8"
        magnitude = " + ".join(f"abs({x})" for x in fit_names + beh_names) or "0"
        c = (
            f"SELECT b.*, ({fit_total}) AS fit_t, ({eng_total}) AS eng_t, "
            f"({fit_total}) + ({eng_total}) AS score_t, "
            f"err_sums + ({magnitude}) * {len(fit_names) + len(beh_names) + 8} * {TWO_TO_MINUS_50} "
            "+ 1e-250 AS err"
            + "".join(
                # (Sizes of 10^7 or more go to Python anyway; the limit keeps the key below from overflowing.)
                f", CASE WHEN c{j} <> 0 AND abs(c{j}) < {SAFE_LIMIT} "
                f"THEN nullif(round(round(c{j}::numeric, 6), 2), 0) END AS r{j}"
                for j in range(len(behavior))
            )
            + f" FROM ({b}) b OFFSET 0"
        )

    # d: rounded scores, the breakdown, and whether SQL's answer is guaranteed to be the engine's.
    def safe(x: str) -> str:
        # Everything within err of x rounds like x: x·10^6 is at least err (+ what the 15-digit
        # step and this float arithmetic could move) away from the nearest half-way point.
        return (
            f"(abs({x}) < {SAFE_LIMIT} AND abs({x} * 1e6::float8 - floor({x} * 1e6::float8) - 0.5) "
            f"> (err + abs({x}) * 2e-14 + 1e-15) * 1e6)"
        )

    def rounded(x: str) -> str:
        # engine.round_half_up; NULL from 10^7 on (those leads go to Python), never an int overflow.
        return f"CASE WHEN abs({x}) < {SAFE_LIMIT} THEN round(round(({x})::numeric, 6))::int END"

    # Rules without decay contribute the engine's very floats, so only totals and decayed rules
    # can round differently.
    if refit:  # engagement is the stored, checked total: only what fit changes can round otherwise
        checks = [safe("fit_t"), safe("score_t")]
        stale = "old_total IS NULL OR old_basis IS DISTINCT FROM %(basis)s::bigint OR NOT is_list OR odd_entry OR "
    else:
        checks = [safe("fit_t"), safe("eng_t"), safe("score_t")]
        checks += [safe(f"c{j}") if j in decayed else f"abs(c{j}) < {SAFE_LIMIT}" for j in range(len(behavior))]
        stale = ""
    if refit:
        c2, breakdown = _refit_breakdown(spec, behavior, c, q)
    else:
        c2 = (
            "SELECT c.*"
            + "".join(f", (abs(r{j}) * 100)::bigint AS h{j}, r{j}::text AS t{j}" for j in range(len(behavior)))
            + f" FROM ({c}) c OFFSET 0"
        )
        breakdown = _breakdown_sql(spec, behavior, q)
    d = (
        f"SELECT {kept}, {rounded('score_t')} AS new_score, {rounded('fit_t')} AS new_fit, "
        f"{'old_eng' if refit else rounded('eng_t')} AS new_eng, eng_t, err, "
        f"{breakdown} AS new_breakdown, "
        f"({stale}lead_unknown OR property_unknown OR NOT ({' AND '.join(checks)})) AS python "
        f"FROM ({c2}) c OFFSET 0"
    )
    min_fit = "" if spec.mql_min_fit is None else f" AND new_fit >= {q(float(spec.mql_min_fit), 'float8')}"
    res = (
        "res AS MATERIALIZED (SELECT d.*, "
        "((old_score, old_fit, old_eng) IS DISTINCT FROM (new_score, new_fit, new_eng) "
        "OR old_breakdown IS DISTINCT FROM new_breakdown) AS differs, "
        f"(new_score >= {threshold}{min_fit}) AS qualifies FROM ({d}) d)"
    )
    if refit:
        return res if pick is None else f"{_picked(spec, pick, lead_table, q)},\n{res}"
    return f"{beh},\n{res}"


_BEHAVIOR_ENTRIES = '$[*] ? (@.type == "behavior")'


def _refit_levels(
    spec, behavior, cols: list[str], kept: str, a: str, fit_names, fit_total: str, q: _Params
):
    """Levels b and c of `_build` for a refit: fit contributions as usual; the stored breakdown's
    behaviour entries as they are, in their order (`beh_list`); the engagement total and its bound
    from the stored columns. The bound E: the stored one, plus a rounding per fit term and total.
    An entry of a behaviour rule the model does not have (`odd_entry`) leaves the lead to a full
    rescore."""
    known = " || ".join(f"@.rule_id == {_jsonpath_id(rule.id)}" for rule in behavior)
    odd = '$[*] ? (@.type == "behavior"' + (f" && !({known}))" if known else ")")
    listed = "CASE WHEN jsonb_typeof(a.old_breakdown) = 'array' THEN a.old_breakdown ELSE '[]'::jsonb END"
    b = (
        f"SELECT {', '.join('a.' + c for c in kept.split(', '))}, a.lead_unknown, false AS property_unknown, "
        "a.old_total, a.old_error, jsonb_typeof(a.old_breakdown) = 'array' AS is_list, "
        f"{', '.join(cols) or '0 AS nothing'}, "
        f"jsonb_path_query_array({listed}, {q(_BEHAVIOR_ENTRIES, 'jsonpath')}) AS beh_list, "
        f"jsonb_path_exists({listed}, {q(odd, 'jsonpath')}) AS odd_entry FROM ({a}) a OFFSET 0"
    )
    magnitude = " + ".join(f"abs({x})" for x in fit_names) or "0"
    c = (
        f"SELECT b.*, ({fit_total}) AS fit_t, old_total AS eng_t, ({fit_total}) + old_total AS score_t, "
        f"old_error + ({magnitude} + abs(old_total)) * {len(fit_names) + 8} * {TWO_TO_MINUS_50} "
        f"+ 1e-250 AS err FROM ({b}) b OFFSET 0"
    )
    return b, c


def _refit_breakdown(spec: engine.ModelSpec, behavior, c: str, q: _Params) -> tuple[str, str]:
    """A refit's new breakdown: the stored behaviour entries (`beh_list`, already in the engine's
    order) with the lead's fit entries inserted where the engine's order puts them. Returns (the
    levels over `c`, the column holding the breakdown).

    The fit entries go in from the last to the first: each goes before the behaviour entries that
    sort after it — found with one jsonpath filter over the lead's few entries (larger size, or the
    same size and a rule earlier in the (label, type, id) order, computed here in Python). Far
    cheaper per lead than taking the entries apart into rows and sorting them again."""
    ranks = _tiebreak_ranks(spec, behavior)
    fits = []
    for k, rule in enumerate(spec.fit_rules):
        points = engine.round_points(rule.points)
        if points != 0:
            fits.append((-abs(Decimal(repr(points))), ranks[("fit", k)], k, rule, points))
    level, column = f"SELECT c.*, beh_list AS bd0 FROM ({c}) c OFFSET 0", "bd0"
    for n, (neg_size, rank, k, rule, points) in enumerate(sorted(fits, reverse=True), start=1):
        size = -neg_size
        ahead = [_jsonpath_id(r.id) for j, r in enumerate(behavior) if ranks[("behavior", j)] < rank]
        tie = " || ".join(f"@.rule_id == {i}" for i in ahead)
        path = f"$[*] ? (@.points.abs() > {size}" + (f" || (@.points.abs() == {size} && ({tie}))" if tie else "") + ")"
        entry = json.dumps({"rule_id": rule.id, "type": "fit", "label": rule.label, "points": points})
        before = f"jsonb_array_length(jsonb_path_query_array(beh_list, {q(path, 'jsonpath')}))"
        level = (
            f"SELECT x.*, CASE WHEN f{k} <> 0 THEN jsonb_insert({column}, ARRAY[{before}::text], "
            f"{q(entry, 'jsonb')}) ELSE {column} END AS bd{n} FROM ({level}) x OFFSET 0"
        )
        column = f"bd{n}"
    return level, column


def _jsonpath_id(rule_id) -> str:
    return "null" if rule_id is None else str(int(rule_id))


def _breakdown_sql(spec: engine.ModelSpec, behavior, q: _Params) -> str:
    """The breakdown (jsonb) of a lead, as `engine._breakdown` builds it, from level c2 of `_build`
    (f{k}: fit contributions; h{j}, t{j}: each behaviour rule's |points| in hundredths and its
    points as text with 2 decimals, NULL when they round to 0.00): each rule whose points round to
    a non-zero 2-decimal value, largest size first, then label, type, id.

    Sorting a handful of entries per lead with an ordered aggregate costs a subquery and a sort per
    lead (5x slower than this). Instead each entry becomes a member of one JSON object whose key
    sorts like the engine's order: 10^15 - |points| × 100, then the rule's place in the (label,
    type, id) order, all keys of one length. jsonb keeps an object's keys sorted (by length, then
    bytes), so `$.*` lists the entries in that order. Labels are never compared in SQL: their order
    is Python's, computed here."""
    ranks = _tiebreak_ranks(spec, behavior)

    def entry(rule, kind: str, points: str) -> str:
        return (
            f'{{"rule_id": {json.dumps(rule.id)}, "type": "{kind}", "label": {json.dumps(rule.label)}, '
            f'"points": {points}}}'
        )

    parts = []
    for k, rule in enumerate(spec.fit_rules):
        points = engine.round_points(rule.points)
        if points != 0:
            size = 10**15 - int(abs(Decimal(repr(points))) * 100)
            member = f'"{size}{ranks[("fit", k)]:06d}": {entry(rule, "fit", repr(points))}'
            parts.append(f"CASE WHEN f{k} <> 0 THEN {q(member, 'text')} END")
    for j, rule in enumerate(behavior):
        # Python's json.dumps of the float: "20.0", "22.5", "0.07" (t{j} is "20.00", "22.50", ...).
        points = f"CASE WHEN right(t{j}, 1) = '0' THEN left(t{j}, -1) ELSE t{j} END"
        head, tail = entry(rule, "behavior", "\x00").split("\x00")
        parts.append(
            f"CASE WHEN h{j} IS NOT NULL THEN '\"' || (1000000000000000 - h{j})::text || "
            f"'{ranks[('behavior', j)]:06d}\": ' || {q(head, 'text')} || {points} || {q(tail, 'text')} END"
        )
    if not parts:
        return "'[]'::jsonb"
    return f"jsonb_path_query_array(('{{' || concat_ws(', ', {', '.join(parts)}) || '}}')::jsonb, '$.*')"


def _age_days(now_sql: str, occurred_at: str) -> str:
    """(now - occurred_at) in days as float8: `date_part` (float arithmetic on the interval's
    fields) rather than `extract` (exact numeric, then a float8 cast: 5x slower); within a few
    roundings of the engine's `total_seconds() / 86400`, which the error bound allows for."""
    return f"(date_part('epoch', {now_sql} - {occurred_at}) / 86400.0::float8)"


def _tiebreak_ranks(spec: engine.ModelSpec, behavior) -> dict[tuple[str, int], int]:
    """Each rule's place in the breakdown's tie-break order (label, type, id), computed with
    Python's own string comparison, so SQL never compares labels (no collation question)."""
    keyed = [(("fit", k), "fit", r) for k, r in enumerate(spec.fit_rules)]
    keyed += [(("behavior", j), "behavior", r) for j, r in enumerate(behavior)]
    keyed.sort(key=lambda x: (x[2].label, x[1], x[2].id is None, x[2].id or 0))
    return {key: rank for rank, (key, _, _) in enumerate(keyed)}


def _params(q: _Params, lead_ids, lo: int, hi: int) -> _Params:
    q["ids"] = bigint_array(lead_ids)
    q["lo"], q["hi"] = lo, hi
    return q


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """One lead as SQL scored it (`compute`)."""

    score: int
    fit_score: int
    engagement_score: int
    breakdown: list
    python: bool  # SQL cannot guarantee the engine's answer for this lead


def compute(
    spec: engine.ModelSpec, kind_ids: dict[str, int], lead_ids: list[int], now: datetime
) -> dict[int, Scored]:
    """{lead id: Scored} for these leads under `spec` at `now`, written nowhere (tests, previews)."""
    reason = unsupported(spec)
    if reason:
        raise Unsupported(reason)
    if not lead_ids:
        return {}
    q = _Params()
    ctes = _build(spec, kind_ids, now, q)
    _params(q, lead_ids, min(lead_ids), max(lead_ids))
    sql = f"WITH {ctes}\nSELECT id, new_score, new_fit, new_eng, new_breakdown, python FROM res"
    with transaction.atomic(), connection.cursor() as cursor:
        _settings(cursor)
        cursor.execute(sql, q)
        return {row[0]: Scored(row[1], row[2], row[3], _json(row[4]), row[5]) for row in cursor.fetchall()}


# What a writing statement returns: (written, changed, ids left to Python, qualifying leads). A
# recycled lead qualifies only with positive engagement since its rejection (an interaction of a
# kind in %(positive)s): checked here, so thousands of recycled leads sitting above the threshold
# are not handed back for promotion by every chunk of every run.
_OUTCOME = (
    "SELECT (SELECT count(*) FROM upd), "
    "(SELECT count(*) FROM res WHERE differs AND NOT python), "
    "(SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM res WHERE python), "
    "(SELECT coalesce(jsonb_agg(jsonb_build_array(id, new_score, new_breakdown) ORDER BY id), '[]') "
    "FROM res WHERE NOT python AND qualifies AND (stage = 'lead' OR stage = 'recycled' AND EXISTS ("
    f"SELECT 1 FROM {Interaction._meta.db_table} i WHERE i.lead_id = res.id "
    "AND i.kind_id = ANY(%(positive)s::bigint[]) AND i.occurred_at > res.stage_changed_at "
    "AND i.occurred_at <= %(now)s::timestamptz)))"
)


@dataclass
class Outcome:
    changed: int  # leads written because their score or breakdown changed
    python: list[int]  # leads SQL left alone: score them with the engine
    qualifying: list[tuple[int, int, list]]  # (lead id, score, breakdown): promotable and qualifying


def rescore(
    spec: engine.ModelSpec,
    kind_ids: dict[str, int],
    lead_ids: list[int],
    now: datetime,
    *,
    scored_at: datetime,
    basis: int,
    positive_kinds: Iterable[int] = (),
    must_write: Iterable[int] = (),
    whole_range: bool = False,
) -> Outcome:
    """Score the leads `lead_ids` (locked by the caller) at `now` and, in the same statement, write
    with `scored_at` those whose score or breakdown changed, those in `must_write`, those never
    scored and those whose stored engagement total is not under these behaviour rules (`basis`,
    engine.behavior_basis). Leads left to Python are neither written nor returned as qualifying.

    `qualifying`: the leads in stage lead whose new score qualifies, and those in stage recycled
    with an interaction of one of `positive_kinds` (kind ids) since their rejection."""
    reason = unsupported(spec)
    if reason:
        raise Unsupported(reason)
    if not lead_ids:
        return Outcome(0, [], [])
    q = _Params()
    ctes = _build(spec, kind_ids, now, q, whole_range=whole_range)
    _params(q, lead_ids, min(lead_ids), max(lead_ids))
    q["must_write"] = bigint_array(sorted(must_write))
    q["scored_at"] = scored_at
    q["basis"] = basis
    q["positive"] = bigint_array(sorted(positive_kinds))
    return _write(
        ctes, q,
        "engagement_score = res.new_eng, engagement_total = res.eng_t, engagement_error = res.err, "
        "engagement_basis = %(basis)s::bigint, scored_at = %(scored_at)s::timestamptz",
        "res.differs OR res.scored_at IS NULL OR res.id = ANY(%(must_write)s::bigint[]) "
        "OR res.old_basis IS DISTINCT FROM %(basis)s::bigint",
        whole_range=whole_range,
    )


def refit(
    spec: engine.ModelSpec, kind_ids: dict[str, int], lead_ids: list[int], *, basis: int, whole_range: bool = False,
    positive_kinds: Iterable[int] = (),
) -> Outcome:
    """After an edit of fit rules alone: score the leads `lead_ids` (locked by the caller) with the
    new fit rules and the engagement they were last scored with, reading no interaction, and write
    those whose score or breakdown changed. `scored_at` and the engagement columns stay: the score
    is still the one of the data read then, under the edited model.

    `python`: leads this cannot do (engagement stored under other behaviour rules than `basis`, or
    too close to a rounding boundary): rescore them in full. (`refit_changed` looks only at the
    leads an edit can change.)"""
    reason = unsupported(spec)
    if reason:
        raise Unsupported(reason)
    if not lead_ids:
        return Outcome(0, [], [])
    q = _Params()
    res = _build(spec, kind_ids, datetime.now(UTC), q, refit=True, whole_range=whole_range)
    _params(q, lead_ids, min(lead_ids), max(lead_ids))
    q["basis"] = basis
    q["positive"] = bigint_array(sorted(positive_kinds))
    return _write(res, q, "", "res.differs", whole_range=whole_range)


def refit_changed(
    spec: engine.ModelSpec, kind_ids: dict[str, int], lo: int, hi: int, changed_fit_rules: list[engine.FitRuleSpec],
    *, basis: int, positive_kinds: Iterable[int] = (),
) -> tuple[Outcome, list[int], int]:
    """`refit` of the leads with ids in [lo, hi] whose score an edit of `changed_fit_rules` (old
    and new versions) can change, picked and locked in the same statement (skipping those another
    rescore holds, as bulk.lock does). Returns (outcome, the picked leads it skipped, how many
    leads [lo, hi] holds). Leads in `outcome.python` are locked: rescore them in full."""
    reason = unsupported(spec)
    if reason:
        raise Unsupported(reason)
    q = _Params()
    ctes = _build(spec, kind_ids, datetime.now(UTC), q, refit=True, whole_range=True, pick=changed_fit_rules)
    q["lo"], q["hi"], q["basis"], q["positive"] = lo, hi, basis, bigint_array(sorted(positive_kinds))
    extra = (
        ", array(SELECT id FROM picked WHERE wanted EXCEPT SELECT id FROM res ORDER BY 1), "
        "(SELECT count(*) FROM picked)"
    )
    outcome, (skipped, count) = _write(ctes, q, "", "res.differs", whole_range=True, extra=extra)
    return outcome, list(skipped), count


def _picked(spec: engine.ModelSpec, changed_fit_rules: list[engine.FitRuleSpec], lead_table: str, q: _Params) -> str:
    """CTE `picked`: each lead with id in [%(lo)s, %(hi)s], `wanted` if an edit of
    `changed_fit_rules` can change its score — one of them (old or new version) matches it, or it
    already qualifies in a promotable stage. Only the changed rules' fields are normalised for this
    test. Leads with "Σ" in one of them are in (Python lower-cases it by context; the refit hands
    them to the engine)."""
    cols, sigmas = _field_columns(changed_fit_rules, q)
    matched = [f"coalesce({_fit_condition(rule, q, 'f')}, false)" for rule in changed_fit_rules]
    min_fit = "" if spec.mql_min_fit is None else f" AND l.fit_score >= {q(float(spec.mql_min_fit), 'float8')}"
    qualifying = f"l.stage IN ('lead', 'recycled') AND l.score >= {q(float(spec.mql_threshold), 'float8')}{min_fit}"
    return (
        f"picked AS MATERIALIZED (SELECT l.id, ({' OR '.join([*sigmas, *matched, qualifying])}) AS wanted "
        f"FROM {lead_table} l CROSS JOIN LATERAL (SELECT {', '.join(cols) or '1 AS nothing'}) f "
        "WHERE l.id BETWEEN %(lo)s::bigint AND %(hi)s::bigint)"
    )


def _write(ctes: str, q: _Params, also_set: str, when: str, *, whole_range: bool, extra: str = ""):
    """Run `ctes` (ending in `res`), update the chunk's leads SQL vouches for where `when` holds —
    score, fit, breakdown, and `also_set` — and return the Outcome (with `extra`, more columns of
    the result row: (Outcome, the values of `extra`)).

    The rows to update are named by the range and, for scattered ids, the ids themselves: the
    planner cannot tell how few rows `res` holds, and for a set spread over the whole table it
    once chose to hash-join it against a scan of every lead (0.9 s instead of a few ms)."""
    scattered = "" if whole_range else "AND l.id = ANY(%(ids)s::bigint[]) "
    sql = (
        f"WITH {ctes},\n"
        f"upd AS (UPDATE {Lead._meta.db_table} l SET score = res.new_score, fit_score = res.new_fit, "
        f"score_breakdown = res.new_breakdown{', ' + also_set if also_set else ''} FROM res "
        f"WHERE l.id = res.id AND l.id BETWEEN %(lo)s::bigint AND %(hi)s::bigint {scattered}AND NOT res.python "
        f"AND ({when}) RETURNING l.id)\n" + _OUTCOME + extra
    )
    with connection.cursor() as cursor:
        _settings(cursor)
        cursor.execute(sql, q)
        _written, changed, python, qualifying, *more = cursor.fetchone()
    outcome = Outcome(changed, list(python), [tuple(x) for x in _json(qualifying)])
    return (outcome, more) if extra else outcome


def _settings(cursor) -> None:
    """The planner cannot estimate rows through the CTEs and overrates the statement, so PostgreSQL
    would JIT-compile it: seconds of compilation for well under a second of work. For this
    transaction only."""
    cursor.execute("SET LOCAL jit = off")
    # The chunk's intermediate rows (a few hundred bytes per lead) stay in memory, not temp files.
    cursor.execute("SET LOCAL work_mem = '64MB'")


def _json(value):
    """jsonb from a raw cursor: Django's psycopg setup hands it over as text."""
    return json.loads(value) if isinstance(value, str) else value
