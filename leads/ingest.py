"""Ingestion: store interactions and upsert leads pushed by marketing tools (the JSON API calls these).

Everything a request carries is validated before anything is written; the writes of one request
happen in one transaction, with a constant number of statements whatever the batch size:

- interactions go in with one ``INSERT ... ON CONFLICT (external_id) DO NOTHING RETURNING``, so a
  repeated ``external_id`` (in the same batch, already stored, or posted concurrently) is stored
  once and counted as accepted exactly once;
- unknown emails become leads with ``INSERT ... ON CONFLICT DO NOTHING`` on the case-insensitive
  unique index, then their ids are read back with the database's own ``lower()``, so two requests
  creating the same lead at once end up with one lead;
- the leads that got new interactions are flagged for rescoring in the same transaction.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pydantic
from django.db import connection, transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.utils import timezone

from scoring import services as scoring_services

from .models import ApiToken, Campaign, Interaction, InteractionKind, Lead
from .schemas import MAX_ITEMS, READ_ONLY_LEAD_FIELDS, InteractionIn, LeadFields, LeadUpsertIn
from .sqlparams import json_array

MAX_ITEM_BYTES = 32 * 1024
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)

# A NUL character, escaped as JSON writes it (\u0000 preceded by an even run of backslashes).
# PostgreSQL refuses NUL in text and jsonb, so it is refused everywhere, up front.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class IngestError(Exception):
    """A request the API refuses: `errors` are {"index", "field", "message"} dicts."""

    def __init__(self, errors: list[dict], status: int = 400):
        self.errors = errors
        self.status = status
        super().__init__(errors)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    lead_ids: tuple[int, ...]  # leads that got at least one new interaction (sorted)


def error(index: int | None, field: str, message: str) -> dict:
    return {"index": index, "field": field, "message": message}


# --- API tokens -------------------------------------------------------------------------------

def api_token_mark_used(*, token: ApiToken, now=None) -> None:
    """Record that `token` was used: at most one write a minute per token, however busy it is."""
    now = now or timezone.now()
    cutoff = now - TOKEN_TOUCH_INTERVAL
    if token.last_used_at is not None and token.last_used_at > cutoff:
        return
    # Conditional, so concurrent requests with the same token write it once.
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff)
    ).update(last_used_at=now)
    token.last_used_at = now


# --- interactions -----------------------------------------------------------------------------

def interactions_ingest(*, payload: Any) -> IngestResult:
    """Validate and store one interaction or a batch (``{"interactions": [...]}``).

    Raises IngestError (400 or 413) and writes nothing if any item is invalid."""
    items = _items(payload)
    texts = _serialized(items)

    now = timezone.now()
    errors: list[dict] = []
    parsed: list[InteractionIn | None] = []
    for index, raw in enumerate(items):
        problems = _encoding_problems(index, raw, texts[index])
        try:
            item = InteractionIn.model_validate(raw)
        except pydantic.ValidationError as exc:
            problems.extend(pydantic_errors(index, exc))
            item = None
        errors.extend(problems)
        parsed.append(None if problems else item)

    kinds = dict(InteractionKind.objects.values_list("slug", "id"))
    names = {name for raw in items if (name := _raw_campaign(raw))}
    campaigns = dict(Campaign.objects.filter(name__in=names).values_list("name", "id")) if names else {}
    faulty: dict[int, set[str]] = {}
    for problem in errors:
        faulty.setdefault(problem["index"], set()).add(problem["field"])
    for index, raw in enumerate(items):
        errors.extend(_reference_problems(index, raw, faulty.get(index, set()), kinds, campaigns))
    if errors:
        errors.sort(key=lambda e: e["index"])
        raise IngestError(errors)

    # A repeated external_id within the batch: the first occurrence is the one stored.
    unique: dict[str, InteractionIn] = {}
    for item in parsed:
        unique.setdefault(item.external_id, item)

    inserted: list[tuple[int, int]] = []
    with transaction.atomic():
        stored = _stored_external_ids(list(unique))
        fresh = [item for key, item in unique.items() if key not in stored]
        if fresh:
            lead_ids = _ensure_leads(fresh, campaigns=campaigns)
            inserted = _insert_interactions(fresh, lead_ids=lead_ids, kinds=kinds, now=now)
        rescore = tuple(sorted({lead_id for _, lead_id in inserted}))
        if rescore:
            scoring_services.leads_request_rescore(lead_ids=list(rescore))
            _rescore_again_when_due(fresh, lead_ids, now)
    return IngestResult(accepted=len(inserted), duplicates=len(items) - len(inserted), lead_ids=rescore)


def _rescore_again_when_due(items: list[InteractionIn], lead_ids: dict[str, int], now) -> None:
    """Items dated ahead of `now` (clock skew the API tolerates) count from their time on: their
    leads are rescored again once the latest of them is due."""
    ahead = [item for item in items if item.occurred_at > now]
    if ahead:
        due = max(item.occurred_at for item in ahead)
        scoring_services.leads_request_rescore(lead_ids={lead_ids[i.email] for i in ahead}, due=due)


def _items(payload: Any) -> list:
    """The list of items of a request body: a single object, or a batch."""
    if not isinstance(payload, dict):
        raise IngestError([error(None, "", 'the body must be a JSON object: one interaction, '
                                            'or {"interactions": [...]}')])
    if "interactions" not in payload:
        return [payload]
    problems = [
        error(None, key, 'unknown field (a batch holds only "interactions")')
        for key in payload if key != "interactions"
    ]
    items = payload["interactions"]
    if not isinstance(items, list):
        problems.append(error(None, "interactions", "must be a list of interaction objects"))
    elif not items:
        problems.append(error(None, "interactions", "must contain at least one interaction"))
    elif len(items) > MAX_ITEMS:
        problems.append(error(
            None, "interactions",
            f"must contain at most {MAX_ITEMS} interactions (got {len(items)}); split the batch",
        ))
    if problems:
        raise IngestError(problems)
    return items


def _serialized(items: list, what: str = "interaction") -> list[str]:
    """Each item as compact JSON; 413 if any is larger than 32 KB (its UTF-8 size)."""
    texts, too_big = [], []
    for index, raw in enumerate(items):
        try:
            text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
        except RecursionError:
            raise IngestError([error(index, "", f"{what} is nested too deeply")]) from None
        # A character is at most 4 bytes in UTF-8: short texts need no encoding to be measured.
        if len(text) > MAX_ITEM_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_ITEM_BYTES:
            too_big.append(error(index, "", f"{what} is larger than 32 KB"))
        texts.append(text)
    if too_big:
        raise IngestError(too_big, status=413)
    return texts


def _encoding_problems(index: int, raw: Any, text: str) -> list[dict]:
    """Text the database cannot store: NUL characters and unpaired surrogates (\\ud800)."""
    problems = []
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        problems.append(error(index, _field_where(raw, _has_surrogate),
                              "contains invalid Unicode (an unpaired surrogate escape such as \\ud800)"))
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        problems.append(error(index, _field_where(raw, _has_nul),
                              "text must not contain NUL (\\u0000) characters"))
    return problems


def _has_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _has_nul(value: Any) -> bool:
    return bool(_NUL_ESCAPE.search(json.dumps(value, ensure_ascii=False)))


def _field_where(raw: Any, test) -> str:
    """The dotted path (up to two levels) of the first field whose value or key fails `test`."""
    if not isinstance(raw, dict):
        return ""
    for key, value in raw.items():
        if test(key):
            return ""
        if test(value):
            if isinstance(value, dict):
                for sub_key, sub_value in value.items():
                    if test(sub_key):
                        return str(key)
                    if test(sub_value):
                        return f"{key}.{sub_key}"
            return str(key)
    return ""


def _raw_campaign(raw: Any) -> str | None:
    lead = raw.get("lead") if isinstance(raw, dict) else None
    return _campaign_name(lead.get("campaign") if isinstance(lead, dict) else None)


def _campaign_name(name: Any) -> str | None:
    """A campaign name worth looking up: non-blank text the database can store (a NUL or an unpaired
    surrogate is reported by _encoding_problems; querying with it would be a database error)."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name or _has_surrogate(name):
        return None
    return name.strip()


def _reference_problems(index: int, raw: Any, faulty: set[str], kinds: dict, campaigns: dict) -> list[dict]:
    """Unknown kind slugs and campaign names (only where the field is otherwise well-formed)."""
    if not isinstance(raw, dict):
        return []
    problems = []
    kind = raw.get("kind")
    if isinstance(kind, str) and kind.strip() and "kind" not in faulty and kind.strip() not in kinds:
        known = ", ".join(sorted(kinds))
        problems.append(error(index, "kind", f"unknown interaction kind {kind.strip()!r} (known: {known})"))
    name = _raw_campaign(raw)
    if name and "lead.campaign" not in faulty and len(name) <= 200 and name not in campaigns:
        problems.append(error(index, "lead.campaign", f"no campaign named {name!r}"))
    return problems


def _stored_external_ids(keys: list[str]) -> set[str]:
    """Which of these idempotency keys are already stored (a cheap pre-check; the insert decides)."""
    found: set[str] = set()
    if connection.vendor == "postgresql":
        # One array parameter, not one placeholder per key: psycopg parses a statement's
        # placeholders in Python, which for a 1,000-item batch cost more than running it.
        meta = Interaction._meta
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT external_id FROM {meta.db_table} "
                "WHERE external_id = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))",
                [json_array(keys)],
            )
            return {row[0] for row in cursor.fetchall()}
    for chunk in _chunks(keys, _max_params()):
        found.update(Interaction.objects.filter(external_id__in=chunk).values_list("external_id", flat=True))
    return found


def _insert_interactions(
    items: list[InteractionIn], *, lead_ids: dict[str, int], kinds: dict[str, int], now
) -> list[tuple[int, int]]:
    """INSERT ... ON CONFLICT (external_id) DO NOTHING RETURNING id, lead_id: the rows stored."""
    qn = connection.ops.quote_name
    meta = Interaction._meta
    columns = [meta.get_field(name).column
               for name in ("lead", "kind", "occurred_at", "properties", "external_id", "received_at")]
    json_placeholder = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    row_sql = f"(%s, %s, %s, {json_placeholder}, %s, %s)"
    # Sorted by key: concurrent batches take the unique-index locks in the same order (no deadlock).
    items = sorted(items, key=lambda i: i.external_id)
    if connection.vendor == "postgresql":
        return _insert_interaction_arrays(items, columns, lead_ids=lead_ids, kinds=kinds, now=now)
    adapt = connection.ops.adapt_datetimefield_value
    received_at = adapt(now)
    rows = [
        (lead_ids[item.email], kinds[item.kind], adapt(item.occurred_at),
         json.dumps(item.properties or {}), item.external_id, received_at)
        for item in items
    ]
    stored = []
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, _max_params() // len(columns)):
            sql = (
                f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(c) for c in columns)}) "
                f"VALUES {', '.join([row_sql] * len(chunk))} "
                f"ON CONFLICT ({qn(meta.get_field('external_id').column)}) DO NOTHING "
                f"RETURNING {qn(meta.pk.column)}, {qn(meta.get_field('lead').column)}"
            )
            cursor.execute(sql, [value for row in chunk for value in row])
            stored.extend((row[0], row[1]) for row in cursor.fetchall())
    return stored


def _insert_interaction_arrays(
    items: list[InteractionIn], columns: list[str], *, lead_ids: dict[str, int], kinds: dict[str, int], now
) -> list[tuple[int, int]]:
    """PostgreSQL: the same INSERT with the rows as one JSON parameter (jsonb_array_elements).

    One parameter, not six per row: psycopg renders and parses every placeholder in Python, which
    for a 1,000-item batch cost more than the database spent storing it. The properties travel as
    JSON objects inside it (not as strings to parse again), the receipt time once."""
    qn = connection.ops.quote_name
    meta = Interaction._meta
    payload = json.dumps(
        {
            "received": now.isoformat(),
            "rows": [[lead_ids[item.email], kinds[item.kind], item.occurred_at.isoformat(), item.properties or {},
                      item.external_id] for item in items],
        },
        separators=(",", ":"),
    )
    # Each row arrives as a JSON array; ->> and -> pick its columns in order.
    picks = "(r ->> 0)::bigint, (r ->> 1)::bigint, (r ->> 2)::timestamptz, r -> 3, (r ->> 4)::text, received"
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(c) for c in columns)}) "
        f"SELECT {picks} FROM (SELECT %s::jsonb AS batch) b, "
        "LATERAL (SELECT (b.batch ->> 'received')::timestamptz AS received) t, "
        "jsonb_array_elements(b.batch -> 'rows') WITH ORDINALITY AS rows (r, n) ORDER BY n "
        f"ON CONFLICT ({qn(meta.get_field('external_id').column)}) DO NOTHING "
        f"RETURNING {qn(meta.pk.column)}, {qn(meta.get_field('lead').column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [payload])
        return [(row[0], row[1]) for row in cursor.fetchall()]


# --- leads ------------------------------------------------------------------------------------

def _ensure_leads(items: list[InteractionIn], *, campaigns: dict[str, int]) -> dict[str, int]:
    """{email as sent: lead id} for these items, creating the leads that do not exist yet."""
    fields_by_email: dict[str, LeadFields | None] = {}
    for item in items:
        if fields_by_email.get(item.email) is None:
            fields_by_email[item.email] = item.lead
    lead_ids = _lead_ids_by_email(list(fields_by_email))
    missing = [email for email in fields_by_email if email not in lead_ids]
    if not missing:
        return lead_ids

    # Every spelling is offered, and the database decides which are one person (its lower() is
    # the unique index's): Ann@x.com and ann@x.com make one lead, spelled as first sent, with the
    # first lead fields sent for any spelling. Sorted by person, so concurrent batches take the
    # unique-index locks in the same order (no deadlock).
    first_seen = {email: position for position, email in enumerate(missing)}
    fields_by_person: dict[str, LeadFields | None] = {}
    for email in missing:
        if fields_by_person.get(email.lower()) is None:
            fields_by_person[email.lower()] = fields_by_email[email]
    ordered = sorted(missing, key=lambda email: (email.lower(), first_seen[email]))
    leads = [_new_lead(email, fields_by_person[email.lower()], campaigns) for email in ordered]
    lead_ids.update(_insert_leads(leads))
    unresolved = [email for email in missing if email not in lead_ids]
    if unresolved:
        # Other spellings of a new lead, or leads a concurrent request created first.
        lead_ids.update(_lead_ids_by_email(unresolved))
    still_missing = [email for email in missing if email not in lead_ids]
    if still_missing:  # pragma: no cover - a lead deleted while being attached to
        raise RuntimeError(f"leads vanished while ingesting: {still_missing[:5]}")
    return lead_ids


def _new_lead(email: str, fields: LeadFields | None, campaigns: dict[str, int]) -> Lead:
    values = fields.model_values(only_set=True) if fields is not None else {}
    campaign = values.pop("campaign", None)
    return Lead(email=email, campaign_id=campaigns[campaign] if campaign else None, **values)


def _lead_ids_by_email(emails: Sequence[str]) -> dict[str, int]:
    """{email as given: lead id}, matched case-insensitively by the database's own lower()."""
    qn = connection.ops.quote_name
    table = qn(Lead._meta.db_table)
    email_col = qn(Lead._meta.get_field("email").column)
    found: dict[str, int] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One probe per email (see below); the emails as one array parameter (see
            # _stored_external_ids).
            cursor.execute(
                f"SELECT wanted.email, (SELECT known.{qn(Lead._meta.pk.column)} FROM {table} known "
                f"WHERE lower(known.{email_col}) = lower(wanted.email)) "
                f"FROM jsonb_array_elements_text(%s::jsonb) AS wanted (email)",
                [json_array(emails)],
            )
            return {email: lead_id for email, lead_id in cursor.fetchall() if lead_id is not None}
        for chunk in _chunks(list(emails), _max_params()):
            # A correlated subquery, not a join: one index probe per email whatever the table size
            # (PostgreSQL would hash-join a large VALUES list against a scan of every lead).
            sql = (
                f"WITH wanted (email) AS (VALUES {', '.join(['(%s)'] * len(chunk))}) "
                f"SELECT wanted.email, (SELECT known.{qn(Lead._meta.pk.column)} FROM {table} known "
                f"WHERE lower(known.{email_col}) = lower(wanted.email)) FROM wanted"
            )
            cursor.execute(sql, list(chunk))
            found.update((email, lead_id) for email, lead_id in cursor.fetchall() if lead_id is not None)
    return found


def _insert_leads(leads: list[Lead]) -> dict[str, int]:
    """INSERT ... ON CONFLICT DO NOTHING on lower(email): {email: id} of the leads actually created."""
    if not leads:
        return {}
    qn = connection.ops.quote_name
    meta = Lead._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    email_col = qn(meta.get_field("email").column)
    if connection.vendor == "postgresql":
        conflict = f"ON CONFLICT (lower({email_col})) DO NOTHING"
    else:
        conflict = "ON CONFLICT DO NOTHING"
    rows = [[f.get_db_prep_save(f.pre_save(lead, add=True), connection) for f in fields] for lead in leads]
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    created: dict[str, int] = {}
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, _max_params() // len(fields)):
            sql = (
                f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
                f"VALUES {', '.join([row_sql] * len(chunk))} {conflict} "
                f"RETURNING {email_col}, {qn(meta.pk.column)}"
            )
            cursor.execute(sql, [value for row in chunk for value in row])
            created.update(cursor.fetchall())
    return created


def lead_upsert(*, payload: Any) -> tuple[Lead, bool]:
    """Create the lead with this email (case-insensitive) or update the fields given.

    Never touches stage, scores or owner. Returns (lead, created); raises IngestError (index 0)."""
    if not isinstance(payload, dict):
        raise IngestError([error(None, "", "the body must be a JSON object (a lead)")])
    errors = _encoding_problems(0, payload, _serialized([payload], what="lead")[0])
    data = None
    try:
        data = LeadUpsertIn.model_validate(payload)
    except pydantic.ValidationError as exc:
        errors.extend(pydantic_errors(0, exc))
    name = _campaign_name(payload.get("campaign"))
    campaigns = dict(Campaign.objects.filter(name=name).values_list("name", "id")) if name else {}
    if name and not any(e["field"] == "campaign" for e in errors) and name not in campaigns:
        errors.append(error(0, "campaign", f"no campaign named {name!r}"))
    if errors:
        raise IngestError(errors)

    values = data.model_values(only_set=True)
    if "campaign" in values:
        name = values.pop("campaign")
        values["campaign_id"] = campaigns[name] if name else None
    with transaction.atomic():
        lead_id = _lead_ids_by_email([data.email]).get(data.email)
        created = False
        if lead_id is None:
            created_ids = _insert_leads([Lead(email=data.email, **values)])
            created = bool(created_ids)
            if created:
                lead_id = next(iter(created_ids.values()))
            else:  # a concurrent request created it first: update it like any other
                lead_id = _lead_ids_by_email([data.email])[data.email]
        if values and not created:
            Lead.objects.filter(pk=lead_id).update(**values, updated_at=timezone.now())
        if created or values:
            # Lead fields feed the fit score.
            scoring_services.leads_request_rescore(lead_ids=[lead_id])
    return Lead.objects.select_related("owner").get(pk=lead_id), created


def lead_by_email(email: str) -> Lead | None:
    """The lead with this email, whatever its case (uses the lower(email) unique index)."""
    email = email.strip()
    if not email or "\x00" in email:  # PostgreSQL refuses NUL in text; no lead has it
        return None
    matches = (
        Lead.objects.select_related("owner")
        .alias(email_lower=Lower("email"))
        .filter(email_lower=Lower(Value(email)))
        .order_by()
    )
    return next(iter(matches[:1]), None)


# --- helpers ----------------------------------------------------------------------------------

_ISO_MESSAGE = "must be an ISO 8601 date-time with a UTC offset, e.g. 2024-05-01T10:00:00+02:00"
_MESSAGES = {
    "missing": "this field is required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "timezone_aware": "must include a UTC offset, e.g. 2024-05-01T10:00:00+02:00 or 2024-05-01T08:00:00Z",
    "datetime_parsing": _ISO_MESSAGE,
    "datetime_from_date_parsing": _ISO_MESSAGE,
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "decimal_parsing": "must be a number",
    "decimal_type": "must be a number",
}


def pydantic_errors(index: int | None, exc: pydantic.ValidationError) -> list[dict]:
    """pydantic errors as the API's {"index", "field", "message"} items (loc → dotted field)."""
    result = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in err["loc"]]
        kind = err["type"]
        if kind == "extra_forbidden":
            message = ("is read-only (set by scoring and the handoff workflow)"
                       if loc and loc[-1] in READ_ONLY_LEAD_FIELDS else "unknown field")
        elif kind == "string_too_long":
            message = f"must be at most {err.get('ctx', {}).get('max_length')} characters"
        elif kind == "literal_error":
            message = f"must be one of {err.get('ctx', {}).get('expected')}"
        else:
            message = _MESSAGES.get(kind, err["msg"])
        result.append(error(index, ".".join(loc), message))
    return result


def _max_params() -> int:
    """How many parameters one statement may carry on this database."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 65535  # PostgreSQL's protocol limit (with server-side binding)


def _chunks(values: list, size: int) -> Iterable[list]:
    size = max(1, size)
    for start in range(0, len(values), size):
        yield values[start:start + size]
