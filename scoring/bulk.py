"""Set-wise rescoring for PostgreSQL, a chunk of leads per transaction.

`rescore_chunk` locks the chunk, takes its rescore requests, and has scoring/sqlscore.py compute and
write every lead's score in one statement: fit, decayed and capped engagement, the engine's rounding,
the breakdown JSON; only changed rows (and those that must be written) are written. The few leads SQL
cannot vouch for (see sqlscore's docstring) are scored by the engine itself.

For a model sqlscore cannot express (rules that fail validation), the previous path remains: one SQL
statement sums each behaviour rule's decayed points per lead (the uncapped s of the formula); rules
with a property condition fetch just that property and are matched in Python with the engine's own
`matches`; the engine then applies caps, adds fit, rounds and builds the breakdown
(`engine.assemble`), and changed rows are written back with COPY + one UPDATE ... FROM.
"""

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from leads.models import Interaction, Lead
from leads.sqlparams import bigint_array

from . import engine, rescore_requests, sqlscore

WRITE_COLUMNS = ("id", "score", "fit_score", "engagement_score", "score_breakdown", "engagement_total")


@dataclass(frozen=True)
class Span:
    """A chunk: the leads with ids in [lo, hi]. A run cuts its spans by id, without reading the
    ids (10,000 of them to Python took 25 ms a chunk; numbering a million in SQL, 0.4-1.4 s)."""

    lo: int
    hi: int

    @classmethod
    def of(cls, ids: list[int]) -> "Span":
        return cls(ids[0], ids[-1])


@dataclass
class ChunkResult:
    leads: int  # leads in the span
    changed: int
    promoted: int
    skipped: list[int]  # held by another rescore: the caller asks for them again


def behavior_sums(rules_by_kind_id: dict, lead_ids: tuple[int, int], now: datetime) -> dict[int, dict]:
    """{lead_id: {rule_id: s}} for leads with id in [lo, hi] (uncapped, decayed sums)."""
    lo, hi = lead_ids
    sums: dict[int, dict] = defaultdict(dict)
    plain = [(kind_id, rule) for kind_id, rules in rules_by_kind_id.items() for rule in rules if not rule.property]
    if plain:
        values = ", ".join(["(%s::bigint, %s::bigint, %s::float8, %s::float8, %s::float8)"] * len(plain))
        params = [p for kind_id, r in plain for p in (r.id, kind_id, r.points, r.half_life_days, r.within_days)]
        sql = f"""
            SELECT i.lead_id, r.rule_id,
                   SUM(r.points * CASE WHEN r.half_life IS NULL THEN 1.0
                       ELSE power(0.5, EXTRACT(EPOCH FROM (%s - i.occurred_at)) / 86400.0 / r.half_life) END)
            FROM {Interaction._meta.db_table} i
            JOIN (VALUES {values}) AS r(rule_id, kind_id, points, half_life, within_days) ON r.kind_id = i.kind_id
            WHERE i.lead_id BETWEEN %s AND %s AND i.occurred_at <= %s
              AND (r.within_days IS NULL OR i.occurred_at >= %s - r.within_days * interval '1 day')
            GROUP BY i.lead_id, r.rule_id
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [now, *params, lo, hi, now, now])
            for lead_id, rule_id, s in cursor.fetchall():
                sums[lead_id][rule_id] = s
    for kind_id, rules in rules_by_kind_id.items():
        for rule in rules:
            if rule.property:
                _property_rule_sums(rule, kind_id, lo, hi, now, sums)
    return sums


def _property_rule_sums(rule, kind_id, lo, hi, now, sums) -> None:
    key = rule.property["key"]
    rows = (
        Interaction.objects.filter(lead_id__gte=lo, lead_id__lte=hi, kind_id=kind_id, occurred_at__lte=now)
        .annotate(value=KeyTransform(key, "properties"))
        .values_list("lead_id", "occurred_at", "value")
        .iterator(chunk_size=10000)
    )
    for lead_id, occurred_at, value in rows:
        fact = engine.InteractionFact(rule.kind, occurred_at, {key: value} if value is not None else {})
        if engine.interaction_applies(rule, fact, now):
            sums[lead_id][rule.id] = sums[lead_id].get(rule.id, 0.0) + engine.decayed_points(rule, fact, now)


def write_scores(rows: list[tuple], scored_at: datetime, basis: int) -> None:
    """Write (id, score, fit, engagement, breakdown, engagement total) rows computed by the engine
    (so exact: error 0) with behaviour rules `basis`; scored_at = when their data was read."""
    if not rows:
        return
    table = Lead._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS rescore_out "
            "(id bigint PRIMARY KEY, score int, fit_score int, engagement_score int, score_breakdown jsonb, "
            "engagement_total float8) "
            "ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy(f"COPY rescore_out ({', '.join(WRITE_COLUMNS)}) FROM STDIN") as copy:
            for lead_id, score, fit, engagement, breakdown, total in rows:
                copy.write_row((lead_id, score, fit, engagement, json.dumps(breakdown), repr(total)))
        cursor.execute(
            f"UPDATE {table} AS l SET score = o.score, fit_score = o.fit_score, "
            "engagement_score = o.engagement_score, score_breakdown = o.score_breakdown, "
            "engagement_total = o.engagement_total, engagement_error = 0, engagement_basis = %s, "
            "scored_at = %s FROM rescore_out o WHERE l.id = o.id",
            [basis, scored_at],
        )
        cursor.execute("TRUNCATE rescore_out")


def rescore_chunk(compiled, span: Span, now: datetime | None, promote) -> ChunkResult:
    """Rescore the leads of `span` inside the caller's transaction, as of `now`
    (None: as of when the chunk's requests are taken — what a run does, see `rescore_locked`).

    Leads locked by a concurrent single-lead rescore are skipped; the caller flags them so they
    are rescored again under the current model.
    `promote(qualifying)` gets (lead id, score, breakdown) for each lead in stage lead or recycled
    whose new score qualifies, and returns how many it promoted.

    The whole computation and the write are one statement (scoring/sqlscore.py); the few leads it
    cannot vouch for are scored by the engine here. A model it cannot express at all takes the
    previous path (`_rescore_chunk_with_engine`)."""
    if sqlscore.unsupported(compiled.spec):
        return _rescore_chunk_with_engine(compiled, span, now, promote)
    locked, skipped = _lock_span(span)
    changed, qualifying = rescore_locked(compiled, locked, now, whole_range=not skipped)
    promoted = promote(sorted(qualifying)) if qualifying else 0
    return ChunkResult(len(locked) + len(skipped), changed, promoted, skipped)


def refit_chunk(
    compiled, span: Span, now: datetime | None, promote, *, changed_fit_rules=None
) -> ChunkResult:
    """`rescore_chunk` after an edit of fit rules alone: new fit, stored engagement, no interaction
    read (sqlscore.refit), only for the leads one of `changed_fit_rules` (old and new versions)
    matches when given — and only those are locked. Leads whose stored engagement cannot be used
    are rescored in full."""
    if sqlscore.unsupported(compiled.spec):
        return _rescore_chunk_with_engine(compiled, span, now, promote)
    kind_ids = {slug: kind_id for kind_id, slug in compiled.kind_slugs.items()}
    positive = _positive_kind_ids(compiled)
    if changed_fit_rules is None:
        locked, skipped = _lock_span(span)
        leads = len(locked) + len(skipped)
        outcome = sqlscore.refit(
            compiled.spec, kind_ids, locked, basis=compiled.basis, whole_range=not skipped, positive_kinds=positive
        )
    else:  # pick, lock and refit in one statement: only the leads the edit can change
        outcome, skipped, leads = sqlscore.refit_changed(
            compiled.spec, kind_ids, span.lo, span.hi, changed_fit_rules, basis=compiled.basis, positive_kinds=positive
        )
    changed, qualifying = outcome.changed, list(outcome.qualifying)
    if outcome.python:
        more, also = rescore_locked(compiled, outcome.python, now)
        changed += more
        qualifying += also
    promoted = promote(sorted(qualifying)) if qualifying else 0
    return ChunkResult(leads, changed, promoted, skipped)


def _positive_kind_ids(compiled) -> list[int]:
    """Kinds whose interactions bring a recycled lead back (a behaviour rule with positive points)."""
    return [kind_id for kind_id, slug in compiled.kind_slugs.items() if slug in compiled.positive_kinds]


def lock(lead_ids: list[int]) -> list[int]:
    """Lock these leads for this transaction, in id order like every writer, skipping those another
    rescore holds (it may be writing under the previous model: the caller asks for them again).
    Returns the ids locked. One array parameter: cheaper than an IN list of thousands."""
    if not lead_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Lead._meta.db_table} WHERE id = ANY(%s::bigint[]) ORDER BY id "
            "FOR NO KEY UPDATE SKIP LOCKED",
            [bigint_array(sorted(lead_ids))],
        )
        return [row[0] for row in cursor.fetchall()]


def _lock_span(span: Span) -> tuple[list[int], list[int]]:
    """Lock the span's leads as `lock` does: (locked, skipped). The span's leads are counted in the
    same statement; their ids are read only when some could not be locked."""
    table = Lead._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH locked AS (SELECT id FROM {table} WHERE id BETWEEN %(lo)s AND %(hi)s "
            "ORDER BY id FOR NO KEY UPDATE SKIP LOCKED) "
            "SELECT (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM locked), "
            f"(SELECT count(*) FROM {table} WHERE id BETWEEN %(lo)s AND %(hi)s)",
            {"lo": span.lo, "hi": span.hi},
        )
        locked, count = cursor.fetchone()
        if len(locked) >= count:
            return list(locked), []
        cursor.execute(f"SELECT id FROM {table} WHERE id BETWEEN %s AND %s ORDER BY id", [span.lo, span.hi])
        held = set(locked)
        return list(locked), [row[0] for row in cursor.fetchall() if row[0] not in held]


def rescore_locked(
    compiled, locked: list[int], now: datetime | None = None, *, whole_range: bool = False
) -> tuple[int, list]:
    """Score these locked leads in full (sqlscore, the engine for what it leaves) and write them:
    (changed, qualifying), as of `now` (None: as of just after their requests are taken).
    whole_range: they are every lead from the first to the last."""
    if not locked:
        return 0, []
    # Locked, so no other rescore writes them now; the requests taken here are covered by the data
    # read below. (A rescore that read before read_at will not overwrite: scored_at is newer.)
    requested = rescore_requests.take(locked)
    # Noted after the take: an interaction whose request was taken was committed before, so it is
    # dated no later than this and counts. (A run's start time would leave out what arrived while
    # the run went on, and yet delete its requests: that lead's score would stay stale.)
    read_at = timezone.now()
    now = now or read_at
    kind_ids = {slug: kind_id for kind_id, slug in compiled.kind_slugs.items()}
    outcome = sqlscore.rescore(
        compiled.spec, kind_ids, locked, now, scored_at=read_at, basis=compiled.basis, must_write=requested,
        whole_range=whole_range, positive_kinds=_positive_kind_ids(compiled),
    )
    changed, qualifying = outcome.changed, list(outcome.qualifying)
    if outcome.python:
        more, also = _rescore_with_engine(compiled, outcome.python, now, read_at=read_at, requested=requested)
        changed += more
        qualifying += also
    return changed, qualifying


def _rescore_with_engine(
    compiled, lead_ids: list[int], now: datetime, *, read_at, requested
) -> tuple[int, list]:
    """The engine itself on a few locked leads, from their interactions (what a single-lead rescore
    does): for the leads SQL cannot vouch for. Returns (changed, qualifying)."""
    spec = compiled.spec
    fields = ["pk", *engine.LEAD_FIELDS.keys() - {"email_domain"}, "stage", "score", "fit_score",
              "engagement_score", "score_breakdown", "scored_at", "engagement_basis"]
    rows = list(Lead.objects.filter(pk__in=lead_ids).order_by("pk").values(*fields))
    facts: dict[int, list] = defaultdict(list)
    history = Interaction.objects.filter(lead_id__in=lead_ids, kind_id__in=list(compiled.kind_slugs))
    history = history.values_list("lead_id", "kind_id", "occurred_at", "properties", "external_id")
    for lead_id, kind_id, occurred_at, properties, external_id in history:
        facts[lead_id].append(
            engine.InteractionFact(compiled.kind_slugs[kind_id], occurred_at, properties or {}, external_id)
        )
    results = {row["pk"]: engine.score_lead(spec, engine.lead_facts(row), facts[row["pk"]], now) for row in rows}
    return _write_results(compiled, rows, results, requested=requested, read_at=read_at)


def _write_results(compiled, rows: list[dict], results: dict, *, requested, read_at) -> tuple[int, list]:
    """Write the results that differ from the stored scores (or must be written: a pending request,
    never scored, scored under other behaviour rules) and return (changed, qualifying) — the engine
    paths' shared tail."""
    spec, basis = compiled.spec, compiled.basis
    out, changed, qualifying = [], 0, []
    for row in rows:
        result = results[row["pk"]]
        breakdown = list(result.breakdown)
        differs = (row["score"], row["fit_score"], row["engagement_score"], row["score_breakdown"]) != (
            result.score, result.fit_score, result.engagement_score, breakdown
        )
        changed += differs
        if differs or row["pk"] in requested or row["scored_at"] is None or row["engagement_basis"] != basis:
            out.append((row["pk"], result.score, result.fit_score, result.engagement_score, breakdown,
                        result.engagement_total))
        if row["stage"] in ("lead", "recycled") and result.qualifies(spec):
            qualifying.append((row["pk"], result.score, breakdown))
    write_scores(out, read_at, basis)
    return changed, qualifying


def _rescore_chunk_with_engine(compiled, span: Span, now: datetime | None, promote) -> ChunkResult:
    """`rescore_chunk` for a model sqlscore cannot express: behaviour sums in SQL, the rest in Python
    (`engine.assemble`), COPY write-back."""
    spec = compiled.spec
    fields = ["pk", *engine.LEAD_FIELDS.keys() - {"email_domain"}, "stage", "stage_changed_at", "score",
              "fit_score", "engagement_score", "score_breakdown", "scored_at", "engagement_basis"]
    locked, skipped = _lock_span(span)
    held = set(locked)
    rows = [row for row in Lead.objects.filter(pk__gte=span.lo, pk__lte=span.hi).order_by("pk").values(*fields)
            if row["pk"] in held]
    # As in rescore_locked: the requests first, then the moment the data is read as of.
    requested = rescore_requests.take(locked)
    read_at = timezone.now()
    now = now or read_at
    rules_by_kind_id: dict = defaultdict(list)
    slug_to_id = {slug: kind_id for kind_id, slug in compiled.kind_slugs.items()}
    for rule in spec.behavior_rules:
        if rule.kind in slug_to_id:
            rules_by_kind_id[slug_to_id[rule.kind]].append(rule)
    sums = behavior_sums(rules_by_kind_id, (span.lo, span.hi), now) if rows else {}

    results = {
        row["pk"]: engine.assemble(
            engine.fit_points(spec, engine.lead_facts(row)),
            engine.behavior_points_from_sums(spec, sums.get(row["pk"], {})),
        )
        for row in rows
    }
    changed, qualifying = _write_results(compiled, rows, results, requested=requested, read_at=read_at)
    promoted = promote(qualifying) if qualifying else 0
    return ChunkResult(len(locked) + len(skipped), changed, promoted, skipped)
