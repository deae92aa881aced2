"""Celery tasks: thin wrappers that take ids and call scoring.services."""

import logging

from celery import shared_task
from django.db import OperationalError as DatabaseError
from kombu.exceptions import OperationalError as BrokerError

from . import services

log = logging.getLogger(__name__)

RETRY = {"autoretry_for": (DatabaseError,), "retry_backoff": True, "max_retries": 8}


@shared_task(acks_late=True, **RETRY)
def rescore_leads(lead_ids):
    services.leads_rescore(lead_ids=lead_ids, only_flagged=True)


@shared_task(acks_late=True, **RETRY)
def rescore_sweep():
    services.rescore_sweep()


@shared_task(acks_late=True, **RETRY)
def run_rescore(run_id):
    services.rescore_run_execute(run_id=run_id)


@shared_task(acks_late=True, **RETRY)
def rescore_decay():
    services.rescore_decay()


def _send(task, *args, what: str) -> None:
    """Enqueue, never failing the caller: if the broker is down the sweep picks the work up."""
    try:
        task.delay(*args)
    except (BrokerError, ConnectionError, OSError) as exc:
        log.warning("could not enqueue %s (%s); the periodic sweep will catch up", what, exc)


def enqueue_rescore(lead_ids) -> None:
    _send(rescore_leads, list(lead_ids), what=f"rescore of {len(lead_ids)} lead(s)")


def enqueue_rescore_run(run_id) -> None:
    _send(run_rescore, run_id, what=f"rescore run {run_id}")
