"""Celery tasks: thin wrappers that take ids and call scoring.services."""

import logging
import time

from celery import shared_task
from celery.exceptions import MaxRetriesExceededError, Retry
from django.db import DatabaseError
from django.db import OperationalError as DatabaseUnavailable
from kombu.exceptions import OperationalError as BrokerError

from . import services

log = logging.getLogger(__name__)

RETRY = {"autoretry_for": (DatabaseUnavailable,), "retry_backoff": True, "max_retries": 8}


@shared_task(acks_late=True, **RETRY)
def rescore_leads(lead_ids):
    services.leads_rescore_requested(lead_ids=lead_ids)
    services.rescore_backlog()  # a worker that fell behind catches up in sets, not task by task


@shared_task(acks_late=True, **RETRY)
def rescore_sweep():
    services.rescore_sweep()


@shared_task(acks_late=True, **RETRY)
def run_rescore(run_id):
    services.rescore_run_execute(run_id=run_id)


@shared_task(acks_late=True, **RETRY)
def rescore_decay():
    services.rescore_decay()


# After a failed publish, skip publishing for a few seconds: every attempt against a dead broker
# costs the request seconds, and the sweep catches up on whatever was not enqueued.
BROKER_BACKOFF_SECONDS = 5.0
_broker_down_until = 0.0


def _send(task, *args, what: str, eta=None) -> None:
    """Enqueue, never failing the caller: if the broker is down the sweep picks the work up."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        log.info("broker recently unreachable; leaving %s to the sweep", what)
        return
    try:
        task.apply_async(args, eta=eta)
    except (BrokerError, ConnectionError, OSError) as exc:
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        log.warning("could not enqueue %s (%s); the periodic sweep will catch up", what, exc)
    except (DatabaseError, Retry, MaxRetriesExceededError) as exc:
        # Only without a broker (eager mode): the task ran inline after the caller's transaction
        # committed, and the database went away meanwhile. What was committed stays committed and
        # the leads stay flagged, so the next rescore or sweep picks them up; the caller must not
        # turn that into an error after the fact.
        log.warning("inline %s failed (%s); the leads stay flagged for the next rescore", what, exc)


def enqueue_rescore(lead_ids, eta=None) -> None:
    """`eta`: for requests due later, the task waits in the worker until then."""
    later = f" at {eta:%H:%M:%S}" if eta else ""
    _send(rescore_leads, list(lead_ids), what=f"rescore of {len(lead_ids)} lead(s){later}", eta=eta)


def enqueue_rescore_run(run_id) -> None:
    _send(run_rescore, run_id, what=f"rescore run {run_id}")
