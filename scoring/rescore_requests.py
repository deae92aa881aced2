"""Rescore requests: the queue of leads whose score may be out of date (scoring.RescoreRequest).

Writers only insert; a rescore deletes exactly the requests it read before reading the data they
stand for. See scoring/services.py for the whole protocol."""

from collections.abc import Collection, Iterable
from datetime import datetime

from django.db import connection
from django.utils import timezone

from leads.sqlparams import bigint_array

from .models import RescoreRequest

BATCH = 1000  # ids per DELETE statement


def add(lead_ids: Collection[int], now: datetime) -> None:
    """A request per lead, due at `now` (a later time for an interaction dated ahead: rescores and
    the sweep leave a request alone until it is due)."""
    if connection.vendor == "postgresql":
        # One array parameter: cheaper than building a model instance per lead (ingest's hot path).
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {RescoreRequest._meta.db_table} (lead_id, requested_at) "
                "SELECT unnest(%s::bigint[]), %s",
                [bigint_array(lead_ids), now],
            )
        return
    RescoreRequest.objects.bulk_create([RescoreRequest(lead_id=lead_id, requested_at=now) for lead_id in lead_ids])


def pending(lead_ids: Collection[int]) -> dict[int, list[int]]:
    """{lead id: ids of its pending requests that are due}, for the leads that have any. Due by the
    time of reading, which every caller's scoring time follows."""
    found: dict[int, list[int]] = {}
    due_by = timezone.now()
    if connection.vendor == "postgresql":
        # One array parameter: a bulk chunk's 10,000 ids as an IN list cost 0.3 s to compile.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, lead_id FROM {RescoreRequest._meta.db_table} "
                "WHERE lead_id = ANY(%s::bigint[]) AND requested_at <= %s",
                [bigint_array(lead_ids), due_by],
            )
            rows = cursor.fetchall()
    else:
        rows = RescoreRequest.objects.filter(lead_id__in=list(lead_ids), requested_at__lte=due_by).values_list(
            "pk", "lead_id"
        )
    for request_id, lead_id in rows:
        found.setdefault(lead_id, []).append(request_id)
    return found


def forget(read: dict[int, list[int]], lead_ids: Iterable[int]) -> None:
    """Delete the requests `read` earlier for these leads, and only those: newer ones stay.

    On PostgreSQL a request claimed by a backlog drain (`claim`) is skipped, not waited for: the
    drain deletes it itself, and waiting here (while holding lead locks the drain will ask for)
    could deadlock."""
    request_ids = [request_id for lead_id in lead_ids for request_id in read.get(lead_id, ())]
    table = RescoreRequest._meta.db_table
    for start in range(0, len(request_ids), BATCH):
        batch = request_ids[start : start + BATCH]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {table} WHERE id IN "
                    f"(SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) FOR UPDATE SKIP LOCKED)",
                    [bigint_array(batch)],
                )
        else:
            RescoreRequest.objects.filter(pk__in=batch).delete()


def claim(*, older_than: datetime, limit: int) -> dict[int, list[int]]:
    """Lock, for the caller's transaction, up to `limit` of the oldest requests made before
    `older_than`: {lead id: request ids}. SKIP LOCKED, so two drains at once take different ones."""
    qs = RescoreRequest.objects.filter(requested_at__lt=older_than).order_by("requested_at")
    if connection.features.has_select_for_update:
        qs = qs.select_for_update(skip_locked=True)
    found: dict[int, list[int]] = {}
    for request_id, lead_id in qs.values_list("pk", "lead_id")[:limit]:
        found.setdefault(lead_id, []).append(request_id)
    return found


def take(lead_ids: Collection[int]) -> set[int]:
    """Delete the pending requests of these leads and return the leads that had any. The caller
    holds the leads' locks and reads their data afterwards."""
    read = pending(lead_ids)
    forget(read, read)
    return set(read)
