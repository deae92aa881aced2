"""Rescore requests: the queue of leads whose score may be out of date (scoring.RescoreRequest).

Writers only insert; a rescore deletes exactly the requests it read before reading the data they
stand for. See scoring/services.py for the whole protocol."""

from collections.abc import Collection, Iterable
from datetime import datetime

from django.db import connection

from .models import RescoreRequest

BATCH = 1000  # ids per DELETE statement


def add(lead_ids: Collection[int], now: datetime) -> None:
    if connection.vendor == "postgresql":
        # One array parameter: cheaper than building a model instance per lead (ingest's hot path).
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {RescoreRequest._meta.db_table} (lead_id, requested_at) "
                "SELECT unnest(%s::bigint[]), %s",
                [list(lead_ids), now],
            )
        return
    RescoreRequest.objects.bulk_create([RescoreRequest(lead_id=lead_id, requested_at=now) for lead_id in lead_ids])


def pending(lead_ids: Collection[int]) -> dict[int, list[int]]:
    """{lead id: ids of its pending requests}, for the leads that have any."""
    found: dict[int, list[int]] = {}
    for request_id, lead_id in RescoreRequest.objects.filter(lead_id__in=list(lead_ids)).values_list("pk", "lead_id"):
        found.setdefault(lead_id, []).append(request_id)
    return found


def forget(read: dict[int, list[int]], lead_ids: Iterable[int]) -> None:
    """Delete the requests `read` earlier for these leads, and only those: newer ones stay."""
    request_ids = [request_id for lead_id in lead_ids for request_id in read.get(lead_id, ())]
    for start in range(0, len(request_ids), BATCH):
        RescoreRequest.objects.filter(pk__in=request_ids[start : start + BATCH]).delete()


def take(lead_ids: Collection[int]) -> set[int]:
    """Delete the pending requests of these leads and return the leads that had any. The caller
    holds the leads' locks and reads their data afterwards."""
    read = pending(lead_ids)
    forget(read, read)
    return set(read)
