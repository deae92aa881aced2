"""Writes for scoring: rescoring leads (some or all), publishing models, previewing impact.

Concurrency rules (PostgreSQL; SQLite serialises writers anyway):
- Whatever may change a lead's score (an interaction, a field edit) adds a RescoreRequest row in the
  same transaction and enqueues a rescore after commit. Ingestion only inserts: it never locks a
  lead row, so it never waits for a rescore or for another batch.
- A rescore notes the time, reads the lead's pending requests, then its data, scores it without
  locks, and finally locks the lead briefly to write. It deletes exactly the requests it read (so
  a request is only removed by a rescore that read what it stands for), and it writes only if no
  rescore that read newer data wrote first (`scored_at` is when the data was read); otherwise it
  leaves its requests and goes again.
- Bulk runs lock a chunk (SKIP LOCKED), take the chunk's requests, note the time, then read; a
  backlog drain does the same with the set of leads whose requests it claimed, and so does a rescore
  task with its own leads (PostgreSQL; `leads_rescore_requested`). Whatever path, a rescore scores
  as of a moment after it read the requests, so the interactions they stand for count.
- The periodic sweep rescores any lead whose request is older than a grace period: no interaction
  is ever left unscored, even if its task was lost.
"""

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, JSONField, Max, Min, Value, When
from django.utils import timezone

from handoff.services import PROMOTABLE, TransitionConflict, lead_promote_to_mql, leads_promote_to_mql
from leads.models import Interaction, InteractionKind, Lead

from . import bulk, edit_scope, engine, rescore_requests, sqlscore
from .models import RescoreRequest, RescoreRun, ScoringModel

log = logging.getLogger(__name__)

CHUNK = 1000  # leads per transaction in sweeps (and bulk runs on SQLite)
BULK_CHUNK = 10000  # leads per transaction in set-wise bulk runs (PostgreSQL)
SCORE_FIELDS = ["score", "fit_score", "engagement_score", "score_breakdown", "scored_at", "engagement_total",
                "engagement_error", "engagement_basis"]
FACT_FIELDS = [name for name in engine.LEAD_FIELDS if name != "email_domain"]


@dataclass
class RescoreOutcome:
    scored: int = 0
    changed: int = 0
    promoted: int = 0
    skipped: int = 0  # locked by another rescore

    def add(self, other: "RescoreOutcome") -> None:
        self.scored += other.scored
        self.changed += other.changed
        self.promoted += other.promoted
        self.skipped += other.skipped


@dataclass
class Impact:
    total: int = 0
    changed: int = 0
    new_mqls: int = 0
    sample: list = field(default_factory=list)


# --- the active model ---------------------------------------------------------------------------


def active_model() -> ScoringModel | None:
    return ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).first()


@dataclass(frozen=True)
class _Compiled:
    model: ScoringModel
    spec: engine.ModelSpec
    kind_slugs: dict  # kind id → slug, for the kinds the rules use
    positive_kinds: frozenset  # slugs of kinds that can raise the score (recycled leads' rule)
    property_kind_ids: frozenset  # ids of kinds that a rule's property condition looks at
    basis: int  # engine.behavior_basis: engagement totals stored under it are still valid


_compiled_cache: dict[tuple, _Compiled] = {}
_compiled_lock = threading.Lock()


def _compile(model: ScoringModel) -> _Compiled:
    """The engine's view of `model`, cached per (model, version, last change): a worker rescoring
    many small batches compiles the active model once, not three queries per task."""
    key = (model.pk, model.version, model.updated_at)
    compiled = _compiled_cache.get(key)
    if compiled is None:
        compiled = _compile_now(model)
        with _compiled_lock:  # a bulk run's threads share it
            _compiled_cache.clear()
            _compiled_cache[key] = compiled
    return compiled


def _compile_now(model: ScoringModel) -> _Compiled:
    spec = model.to_spec()
    used = {rule.kind for rule in spec.behavior_rules}
    kind_slugs = dict(InteractionKind.objects.filter(slug__in=used).values_list("id", "slug"))
    positive = frozenset(rule.kind for rule in spec.behavior_rules if rule.points > 0)
    with_property = {rule.kind for rule in spec.behavior_rules if rule.property}
    property_kind_ids = frozenset(kind_id for kind_id, slug in kind_slugs.items() if slug in with_property)
    return _Compiled(model, spec, kind_slugs, positive, property_kind_ids, engine.behavior_basis(spec))


# --- scoring a set of leads ---------------------------------------------------------------------


def _interactions_by_lead(lead_ids: Collection[int], compiled: _Compiled) -> dict[int, list]:
    """The interactions that any behaviour rule could count, grouped by lead (one query).

    Properties are read only for the kinds a property condition looks at, and external ids not at
    all (the unique index already keeps one row per event): decoding them was a third of a small
    rescore's time."""
    grouped: dict[int, list] = {lead_id: [] for lead_id in lead_ids}
    kind_slugs = compiled.kind_slugs
    if not kind_slugs or not lead_ids:
        return grouped
    properties = Case(
        When(kind_id__in=list(compiled.property_kind_ids), then=F("properties")),
        default=Value(None), output_field=JSONField(),
    ) if compiled.property_kind_ids else Value(None, output_field=JSONField())
    rows = Interaction.objects.filter(lead_id__in=list(lead_ids), kind_id__in=list(kind_slugs)).values_list(
        "lead_id", "kind_id", "occurred_at", properties
    )
    empty: dict = {}
    for lead_id, kind_id, occurred_at, props in rows:
        grouped[lead_id].append(engine.InteractionFact(kind_slugs[kind_id], occurred_at, props or empty))
    return grouped


def _score(compiled: _Compiled, leads: list[Lead], now: datetime) -> tuple[dict, dict]:
    interactions = _interactions_by_lead([lead.pk for lead in leads], compiled)
    results = {
        lead.pk: engine.score_lead(compiled.spec, engine.lead_facts(lead), interactions[lead.pk], now)
        for lead in leads
    }
    return results, interactions


def _write(leads: list[Lead]) -> None:
    """Write the score fields of `leads`: one UPDATE per lead, sent as one executemany.

    Faster than bulk_update's CASE expressions (which SQLite in particular evaluates slowly) and the
    same statements on both databases."""
    if not leads:
        return
    fields = [Lead._meta.get_field(name) for name in SCORE_FIELDS]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    sql = f"UPDATE {connection.ops.quote_name(Lead._meta.db_table)} SET {assignments} WHERE id = %s"
    rows = [
        [f.get_db_prep_save(getattr(lead, f.attname), connection) for f in fields] + [lead.pk] for lead in leads
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _has_new_engagement(compiled: _Compiled, lead: Lead, facts: list) -> bool:
    """A recycled lead becomes an MQL again only after positive engagement since its rejection."""
    return any(f.kind in compiled.positive_kinds and f.occurred_at > lead.stage_changed_at for f in facts)


def _apply(
    compiled: _Compiled, leads: list[Lead], now: datetime, *, read_at: datetime,
    pending: Collection[int] = (), scored: tuple | None = None,
) -> RescoreOutcome:
    """Write the scores of `leads` (locked by the caller) that changed, promote new MQLs.

    read_at: when the data was read (stored as scored_at). Leads in `pending` (their rescore
    requests are being deleted) are written even if unchanged, so that scored_at records that this
    data has been seen. `scored` is what `_score` returned if the caller computed it already."""
    results, interactions = scored or _score(compiled, leads, now)
    outcome = RescoreOutcome(scored=len(leads))
    dirty = []
    for lead in leads:
        result = results[lead.pk]
        breakdown = list(result.breakdown)
        changed = (lead.score, lead.fit_score, lead.engagement_score, lead.score_breakdown) != (
            result.score, result.fit_score, result.engagement_score, breakdown
        )
        if changed or lead.pk in pending or lead.scored_at is None or lead.engagement_basis != compiled.basis:
            outcome.changed += changed
            lead.score, lead.fit_score, lead.engagement_score = result.score, result.fit_score, result.engagement_score
            lead.score_breakdown, lead.scored_at = breakdown, read_at
            lead.engagement_total, lead.engagement_error = result.engagement_total, 0.0
            lead.engagement_basis = compiled.basis
            dirty.append(lead)
    _write(dirty)
    version = compiled.model.version_label
    for lead in leads:
        result = results[lead.pk]
        if lead.stage not in PROMOTABLE or not result.qualifies(compiled.spec):
            continue
        if lead.stage == "recycled" and not _has_new_engagement(compiled, lead, interactions[lead.pk]):
            continue
        try:
            lead_promote_to_mql(
                lead=lead, score=result.score, breakdown=result.breakdown, model_version=version, now=now
            )
            outcome.promoted += 1
        except TransitionConflict:
            log.info("lead %s moved while being promoted; left as is", lead.pk)
    return outcome


def _promote_many(compiled: _Compiled, qualifying: list, now: datetime | None = None) -> int:
    """Promote leads (already locked, scores written) whose new score qualifies, as of `now`
    (default: the current time): `qualifying` is (lead id, score, breakdown) triples. The
    recycled-lead rule is checked for all of them in one query, and the state machine promotes them
    together (`leads_promote_to_mql`: a handoff and an audit row each, a constant number of
    statements)."""
    now = now or timezone.now()
    leads = Lead.objects.in_bulk([lead_id for lead_id, _, _ in qualifying])
    recycled = [lead.pk for lead in leads.values() if lead.stage == "recycled"]
    engaged = set(
        Lead.objects.filter(
            pk__in=recycled, interactions__kind__slug__in=compiled.positive_kinds,
            interactions__occurred_at__gt=F("stage_changed_at"), interactions__occurred_at__lte=now,
        ).values_list("pk", flat=True).distinct()
    ) if recycled else set()
    promotions = [
        (leads[lead_id], score, breakdown)
        for lead_id, score, breakdown in qualifying
        if lead_id in leads and leads[lead_id].stage in PROMOTABLE
        # a recycled lead needs positive engagement since its rejection
        and (leads[lead_id].stage != "recycled" or lead_id in engaged)
    ]
    if not promotions:
        return 0
    return len(leads_promote_to_mql(promotions=promotions, model_version=compiled.model.version_label, now=now))


def _locked(lead_ids: Iterable[int], *, skip_locked: bool):
    qs = Lead.objects.filter(pk__in=list(lead_ids)).order_by("pk")
    if connection.features.has_select_for_update:
        qs = qs.select_for_update(no_key=True, skip_locked=skip_locked, of=("self",))
    return list(qs)


def leads_rescore(*, lead_ids: Collection[int], only_flagged: bool = False, now: datetime | None = None) -> RescoreOutcome:
    """Rescore these leads with the active model (as of `now`, default: the current time).

    only_flagged: only leads with a pending rescore request — this is what turns a burst of
    interactions for one lead (one task each) into a single rescore.

    The slow part (reading interactions, scoring) runs without locks; the write is a short
    transaction that locks the leads and skips any lead that a rescore which read newer data has
    written meanwhile (its requests stay, and the lead is rescored once more). A score is never
    overwritten with one computed from older data.
    """
    ids = sorted(set(lead_ids))
    outcome, again = RescoreOutcome(), []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        read_at = timezone.now()  # before the requests are read: what they stand for is in the data
        pending = rescore_requests.pending(chunk)
        _rescore_chunk(chunk, read_at=read_at, pending=pending, only_flagged=only_flagged, now=now,
                       outcome=outcome, again=again)
    if again:
        transaction.on_commit(partial(_enqueue_rescore, again))
    return outcome


def leads_rescore_requested(*, lead_ids: Collection[int]) -> RescoreOutcome:
    """What a rescore task does: rescore those of these leads that still have a request.

    On PostgreSQL set-wise, a chunk at a time (`_rescore_set_wise`: lock, take the requests, one
    statement): a third of the CPU of the engine path per lead, for 50 leads as for 1,000, which
    is what lets ingest and rescoring share two cores. Leads another rescore holds are then done
    the single-lead way, which waits for them rather than leave them to the sweep."""
    ids = sorted(set(lead_ids))
    if settings.ACCORD_RESCORE_DELAY_SECONDS:
        time.sleep(settings.ACCORD_RESCORE_DELAY_SECONDS)  # reliability tests only
    outcome, left = RescoreOutcome(), []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with transaction.atomic():
            flagged = sorted(rescore_requests.pending(chunk))
            skipped = _rescore_set_wise(flagged, outcome=outcome) if flagged else []
        left += chunk if skipped is None else skipped
    if left:
        outcome.add(leads_rescore(lead_ids=left, only_flagged=True))
    return outcome


BACKLOG_AGE = timedelta(seconds=1)
DUE_MARGIN = timedelta(seconds=1)  # a task for a request due at t runs at t + this (workers' clocks)
BACKLOG_BUDGET_SECONDS = 2.0


def rescore_backlog(*, limit: int = CHUNK) -> RescoreOutcome:
    """Rescore, a set at a time, the leads whose requests have waited longer than BACKLOG_AGE.

    When the worker falls behind, its queue holds one small task per ingest batch; the first task
    to run this takes the whole backlog in sets of `limit` leads (far cheaper per lead than sets of
    50), and the tasks behind it find their leads done. Requests are claimed with SKIP LOCKED, so
    two workers split a backlog instead of doing it twice. Bounded in time; the sweep and later
    tasks take what is left."""
    outcome, again = RescoreOutcome(), []
    started = time.monotonic()
    while time.monotonic() - started < BACKLOG_BUDGET_SECONDS:
        with transaction.atomic():
            read_at = timezone.now()
            claimed = rescore_requests.claim(older_than=read_at - BACKLOG_AGE, limit=limit)
            if not claimed:
                break
            if _rescore_set_wise(sorted(claimed), outcome=outcome) is None:
                _rescore_chunk(sorted(claimed), read_at=read_at, pending=claimed, only_flagged=True, now=None,
                               outcome=outcome, again=again)
    if again:
        transaction.on_commit(partial(_enqueue_rescore, again))
    return outcome


def _rescore_set_wise(lead_ids: list[int], *, outcome: RescoreOutcome) -> list[int] | None:
    """PostgreSQL: rescore a set of leads the way a bulk run does a chunk — lock them (skipping
    those another rescore holds: their requests stay), take their requests, score and write them in
    one statement (scoring/sqlscore.py), promote. Several times cheaper per lead than scoring them
    in Python. Returns the leads it skipped; None when this path does not apply (SQLite, no active
    model, a model SQL cannot express): the caller scores them the single-lead way."""
    model = active_model()
    if connection.vendor != "postgresql" or model is None:
        return None
    compiled = _compile(model)
    if sqlscore.unsupported(compiled.spec):
        return None
    locked = bulk.lock(lead_ids)
    if not ScoringModel.objects.filter(pk=model.pk, status=model.status, version=model.version).exists():
        return []  # replaced meanwhile: leave the requests to the new model's run and the sweep
    changed, qualifying = bulk.rescore_locked(compiled, locked)
    promoted = _promote_many(compiled, sorted(qualifying)) if qualifying else 0
    held = set(locked)
    skipped = [lead_id for lead_id in lead_ids if lead_id not in held]
    outcome.add(RescoreOutcome(scored=len(locked), changed=changed, promoted=promoted, skipped=len(skipped)))
    return skipped


def _rescore_chunk(
    chunk: list[int], *, read_at: datetime, pending: dict, only_flagged: bool, now: datetime | None,
    outcome: RescoreOutcome, again: list,
) -> None:
    """Rescore one chunk of leads whose requests `pending` were read (or claimed) at `read_at`."""
    model = active_model()
    leads = list(Lead.objects.filter(pk__in=[i for i in chunk if i in pending] if only_flagged else chunk)
                 .order_by("pk"))
    if not leads:
        return
    if settings.ACCORD_RESCORE_DELAY_SECONDS:
        time.sleep(settings.ACCORD_RESCORE_DELAY_SECONDS)  # reliability tests only
    if model is None:
        # Nothing to score with: forget the requests, so the sweep does not spin on them.
        rescore_requests.forget(pending, [lead.pk for lead in leads])
        return
    # As of now, after the requests were read: an interaction whose request was read was committed
    # before, so it is dated no later than this and counts. (read_at, the time written as scored_at,
    # is earlier: it only has to precede the data read.)
    when = now or timezone.now()
    compiled = _compile(model)
    scored = _score(compiled, leads, when)
    with transaction.atomic():
        stored = dict(_lock_scored_at([lead.pk for lead in leads]))
        if not ScoringModel.objects.filter(pk=model.pk, status=model.status, version=model.version).exists():
            # The model changed while we scored: score them again under the new one.
            outcome.skipped += len(leads)
            again.extend(lead.pk for lead in leads)
            return
        fresh = []
        for lead in leads:
            if lead.pk not in stored:
                continue  # deleted meanwhile
            lead.scored_at = stored[lead.pk]
            if lead.scored_at is not None and lead.scored_at > read_at:
                again.append(lead.pk)  # written from newer data meanwhile; ours may be stale
            else:
                fresh.append(lead)
        outcome.skipped += len(leads) - len(fresh)
        outcome.add(_apply(compiled, fresh, when, read_at=read_at, pending=pending, scored=scored))
        rescore_requests.forget(pending, [lead.pk for lead in fresh])


def _enqueue_rescore(lead_ids, eta=None):
    from .tasks import enqueue_rescore

    enqueue_rescore(lead_ids, eta=eta)


def _lock_scored_at(lead_ids: list[int]):
    """Lock the leads (in id order, like every writer) and return (id, scored_at) pairs."""
    qs = Lead.objects.filter(pk__in=lead_ids).order_by("pk")
    if connection.features.has_select_for_update:
        qs = qs.select_for_update(no_key=True, of=("self",))
    return qs.values_list("pk", "scored_at")


def leads_request_rescore(*, lead_ids: Collection[int], due: datetime | None = None) -> None:
    """Ask for these leads to be rescored: a request row each, and a task once the caller's
    transaction commits. Inserts only: never waits for a lock on the leads.

    `due`: a time ahead, for interactions dated ahead of the clock (the API allows a few minutes of
    skew). Scoring counts an interaction from its time on, so the rescore its arrival triggers
    leaves it out; this request waits until then (rescores leave it alone until it is due), its task
    runs just after, and if the task is lost the sweep takes the request up a grace period later."""
    ids = sorted(set(lead_ids))
    if not ids:
        return
    rescore_requests.add(ids, due or timezone.now())
    eta = due + DUE_MARGIN if due else None
    transaction.on_commit(partial(_enqueue_rescore, ids, eta=eta))


def rescore_sweep(*, now: datetime | None = None, grace_seconds: int | None = None) -> RescoreOutcome:
    """Rescore every lead flagged for longer than the grace period (its task was lost or is late)."""
    now = now or timezone.now()
    grace = settings.ACCORD_SWEEP_SECONDS if grace_seconds is None else grace_seconds
    cutoff = now - timedelta(seconds=grace)
    _restart_stalled_runs(now=now, cutoff=cutoff)
    outcome = RescoreOutcome()
    while True:
        ids = set(
            RescoreRequest.objects.filter(requested_at__lte=cutoff)
            .order_by("requested_at")
            .values_list("lead_id", flat=True)[:CHUNK]
        )
        if not ids:
            return outcome
        step = leads_rescore(lead_ids=ids, only_flagged=True)
        outcome.add(step)
        if step.scored == 0:
            return outcome  # all locked by running rescores: they will clear them


# --- bulk runs ------------------------------------------------------------------------------------

RUN_STALLED_AFTER = timedelta(minutes=5)


def _restart_stalled_runs(*, now: datetime, cutoff: datetime) -> None:
    """Re-enqueue runs whose task was lost (never started) or whose worker died mid-way."""
    from .tasks import enqueue_rescore_run

    stalled = RescoreRun.objects.filter(status=RescoreRun.Status.QUEUED, created_at__lte=cutoff) | (
        RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING, heartbeat_at__lte=now - RUN_STALLED_AFTER)
    )
    for run_id in stalled.values_list("pk", flat=True):
        log.warning("restarting stalled rescore run %s", run_id)
        enqueue_rescore_run(run_id)


def rescore_run_start(
    *, model: ScoringModel, reason: str, scope: str = edit_scope.FULL, changed_fit_rules: list | None = None
) -> RescoreRun:
    """Create a bulk run (of every lead, or what `scope` needs) and start it after commit."""
    run = RescoreRun.objects.create(
        model=model, reason=reason, scope=scope, changed_fit_rules=changed_fit_rules,
        total=_number_of(Lead.objects.all()),
    )
    from .tasks import enqueue_rescore_run

    transaction.on_commit(partial(enqueue_rescore_run, run.pk))
    return run


def rescore_run_execute(*, run_id: int) -> RescoreRun:
    """Rescore the leads with the run's model, a chunk per transaction, recording progress: every
    lead in full, or what the run's scope needs (scoring/edit_scope.py).

    On PostgreSQL, ACCORD_RESCORE_THREADS threads take chunks in turn, each on its own database
    connection, so the run uses that many cores of the database, while it holds one worker slot.
    (Inside a caller's transaction, as in tests, one thread: other connections could not see it.)

    Idempotent: a redelivered run starts over (scores are a pure function of the data), and a run
    whose model is no longer active stops, since a newer run will cover every lead."""
    run = RescoreRun.objects.get(pk=run_id)
    if run.status == RescoreRun.Status.DONE:
        return run
    now = timezone.now()
    set_wise = connection.vendor == "postgresql"
    chunks = _Chunks(_run_candidates(run), BULK_CHUNK if set_wise else CHUNK)
    RescoreRun.objects.filter(pk=run.pk).update(
        status=RescoreRun.Status.RUNNING, started_at=now, heartbeat_at=now, done=0, changed=0, promoted=0,
        total=chunks.total,
    )
    work = partial(_run_chunks, run, chunks, set_wise)
    threads = settings.ACCORD_RESCORE_THREADS if set_wise and not connection.in_atomic_block else 1
    try:
        if threads == 1:
            work()
        else:
            with ThreadPoolExecutor(threads, thread_name_prefix=f"rescore-run-{run.pk}") as pool:
                for future in [pool.submit(_in_own_connection, work) for _ in range(threads)]:
                    future.result()
        # For a large table the total was an estimate: once every span is done, the count is `done`.
        RescoreRun.objects.filter(pk=run.pk).update(
            status=RescoreRun.Status.DONE, finished_at=timezone.now(), total=F("total" if chunks.stopped else "done")
        )
    except Exception as exc:
        RescoreRun.objects.filter(pk=run.pk).update(
            status=RescoreRun.Status.FAILED, finished_at=timezone.now(), error=repr(exc)[:2000]
        )
        raise
    run.refresh_from_db()
    return run


class _Chunks:
    """The run's leads in spans of about `size` leads, handed to any number of threads in id order.
    Stops them all when one finds the model replaced or fails.

    Spans are cut by id, from the candidates' first and last id and their number: numbering every
    id to cut exact spans cost 0.4-1.4 s at a million leads, and each chunk counts its own leads
    anyway. For every lead of a large table the number is PostgreSQL's estimate (`total`, shown as
    the run's progress until it ends): counting a million rows costs up to a second when a
    previous run left the visibility map cleared. A lead created later is in no span: its own
    rescore request scores it under the active model."""

    def __init__(self, candidates, size: int):
        self.candidates, self.stopped = candidates, False
        cut = candidates.aggregate(lo=Min("pk"), hi=Max("pk"))
        self.total, self.spans = (_number_of(candidates) if cut["lo"] is not None else 0), deque()
        if self.total:
            width = max(1, math.ceil(size * (cut["hi"] - cut["lo"] + 1) / self.total))
            self.spans.extend(
                bulk.Span(lo, min(lo + width - 1, cut["hi"])) for lo in range(cut["lo"], cut["hi"] + 1, width)
            )
        self.lock = threading.Lock()

    def next(self) -> bulk.Span | None:
        with self.lock:
            return None if self.stopped or not self.spans else self.spans.popleft()

    def stop(self) -> None:
        self.stopped = True


def _number_of(candidates) -> int:
    """How many leads `candidates` holds: for all the leads of a large table, PostgreSQL's estimate
    (a count of a million rows costs up to a second); otherwise the count."""
    if connection.vendor == "postgresql" and not candidates.query.where:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Lead._meta.db_table])
            estimate = cursor.fetchone()[0]
        if estimate >= RescoreRun.ESTIMATED_FROM:
            return round(estimate)
    return candidates.count()


def _in_own_connection(work) -> None:
    try:
        work()
    finally:
        connection.close()  # this thread's own connection


def _run_chunks(run: RescoreRun, chunks: _Chunks, set_wise: bool) -> None:
    """Take chunks until none is left: rescore each in one transaction, record the progress.

    Each chunk is scored as of when its requests are taken, not as of the run's start: the run
    deletes the requests of what arrived while it ran, so it must count those interactions."""
    if run.scope == edit_scope.FIT:
        changed = None if run.changed_fit_rules is None else [engine.FitRuleSpec(**r) for r in run.changed_fit_rules]
        chunk_step = partial(bulk.refit_chunk, changed_fit_rules=changed)
    else:
        chunk_step = bulk.rescore_chunk
    try:
        while True:
            model = ScoringModel.objects.get(pk=run.model_id)
            if model.status != ScoringModel.Status.ACTIVE:
                chunks.stop()
                return
            compiled = _compile(model)
            span = chunks.next()
            if span is None:
                return
            in_span = chunks.candidates.filter(pk__gte=span.lo, pk__lte=span.hi)
            with transaction.atomic():
                if run.scope == edit_scope.THRESHOLD:
                    # No score changes: promote the leads the new threshold lets through.
                    qualifying = list(in_span.values_list("pk", "score", "score_breakdown"))
                    promoted = _promote_many(compiled, qualifying)
                    skipped, step = [], RescoreOutcome(scored=len(qualifying), promoted=promoted)
                elif set_wise:
                    result = chunk_step(compiled, span, None, promote=partial(_promote_many, compiled))
                    skipped = result.skipped
                    step = RescoreOutcome(scored=result.leads, changed=result.changed, promoted=result.promoted)
                else:
                    leads = _locked(in_span.values_list("pk", flat=True), skip_locked=False)
                    pending = rescore_requests.take([lead.pk for lead in leads])
                    read_at = timezone.now()  # after the take, as in bulk.rescore_locked
                    skipped, step = [], _apply(compiled, leads, read_at, read_at=read_at, pending=pending)
            if skipped:
                # A single-lead rescore held them, maybe under the previous model: go again.
                leads_request_rescore(lead_ids=skipped)
            RescoreRun.objects.filter(pk=run.pk).update(
                heartbeat_at=timezone.now(),
                done=F("done") + step.scored, changed=F("changed") + step.changed,
                promoted=F("promoted") + step.promoted,
            )
    except BaseException:
        chunks.stop()
        raise


def rescore_decay() -> RescoreRun | None:
    """Periodic: engagement fades with time, so rescore every lead under the active model."""
    model = active_model()
    if model is None or not model.behavior_rules.filter(half_life_days__isnull=False).exists() and not (
        model.behavior_rules.filter(within_days__isnull=False).exists()
    ):
        return None
    if RescoreRun.objects.filter(status__in=[RescoreRun.Status.QUEUED, RescoreRun.Status.RUNNING]).exists():
        return None  # a run in progress already brings every lead up to date
    return rescore_run_start(model=model, reason="decay")


# --- publishing ---------------------------------------------------------------------------------


@transaction.atomic
def model_publish(*, model: ScoringModel, by=None) -> RescoreRun:
    """Make `model` the active one (archiving the previous), and rescore every lead with it."""
    now = timezone.now()
    ScoringModel.objects.select_for_update().filter(pk=model.pk).get()
    ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).exclude(pk=model.pk).update(
        status=ScoringModel.Status.ARCHIVED
    )
    ScoringModel.objects.filter(pk=model.pk).update(
        status=ScoringModel.Status.ACTIVE, version=F("version") + 1, published_at=now, published_by=by
    )
    model.refresh_from_db()
    return rescore_run_start(model=model, reason=f"published {model.version_label}")


@transaction.atomic
def model_rules_changed(*, model: ScoringModel, previous: engine.ModelSpec | None = None) -> RescoreRun | None:
    """After an edit of the active model: a new version, and the leads rescored with it — all of
    them in full, or only what the edit needs when `previous` (the model before the edit) says
    what changed (scoring/edit_scope.py)."""
    if model.status != ScoringModel.Status.ACTIVE:
        return None
    ScoringModel.objects.filter(pk=model.pk).update(version=F("version") + 1)
    model.refresh_from_db()
    spec = model.to_spec()
    scope = edit_scope.edit_scope(previous, spec)
    changed = edit_scope.changed_fit_rules(previous, spec) if scope == edit_scope.FIT else None
    label = dict(edit_scope.CHOICES)[scope]
    return rescore_run_start(
        model=model, reason=f"edited {model.version_label} ({label})", scope=scope, changed_fit_rules=changed
    )


def _run_candidates(run: RescoreRun):
    """The leads a run goes through: every lead, or for a threshold change those in stage lead or
    recycled whose stored score now qualifies (none for a change that needs nothing)."""
    if run.scope == edit_scope.NOTHING:
        return Lead.objects.none()
    if run.scope != edit_scope.THRESHOLD:
        return Lead.objects.all()
    model = run.model
    leads = Lead.objects.filter(stage__in=PROMOTABLE, score__gte=model.mql_threshold)
    return leads if model.mql_min_fit is None else leads.filter(fit_score__gte=model.mql_min_fit)


def model_preview_impact(*, model: ScoringModel, now: datetime | None = None, sample_size: int = 10) -> Impact:
    """What publishing `model` would do, computed with the same engine and written nowhere."""
    now = now or timezone.now()
    compiled = _compile_now(model)  # a draft's rules change without a version bump: never cached
    impact = Impact()
    last_id = 0
    while True:
        leads = list(Lead.objects.filter(pk__gt=last_id).order_by("pk")[:CHUNK])
        if not leads:
            return impact
        last_id = leads[-1].pk
        results, interactions = _score(compiled, leads, now)
        for lead in leads:
            result = results[lead.pk]
            impact.total += 1
            if result.score != lead.score:
                impact.changed += 1
                if len(impact.sample) < sample_size:
                    impact.sample.append((lead.email, lead.score, result.score))
            if lead.stage in PROMOTABLE and result.qualifies(compiled.spec):
                if lead.stage != "recycled" or _has_new_engagement(compiled, lead, interactions[lead.pk]):
                    impact.new_mqls += 1
