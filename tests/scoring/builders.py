"""Small builders for scoring tests (the factories module has the full set)."""

import threading
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction

from django.utils import timezone

from leads.models import Interaction, InteractionKind, Lead
from scoring.models import BehaviorRule, FitRule, RescoreRequest, ScoringModel


def make_model(*, name="Test model", threshold=50, min_fit=None, fit=(), behavior=(), status="draft"):
    """fit: (label, field, operator, value, points); behavior: dicts of BehaviorRule fields with kind slug."""
    model = ScoringModel.objects.create(name=name, mql_threshold=threshold, mql_min_fit=min_fit, status=status)
    for i, (label, field, operator, value, points) in enumerate(fit):
        FitRule.objects.create(model=model, position=i, label=label, field=field, operator=operator, value=value, points=points)
    for i, rule in enumerate(behavior):
        rule = dict(rule)
        kind = InteractionKind.objects.get(slug=rule.pop("kind"))
        BehaviorRule.objects.create(model=model, position=i, kind=kind, **rule)
    return model


def interact(lead, kind, *, days_ago=0, properties=None, external_id=None):
    Interaction.objects.create(
        lead=lead,
        kind=InteractionKind.objects.get(slug=kind),
        occurred_at=timezone.now() - timedelta(days=days_ago),
        properties=properties or {},
        external_id=external_id or f"t-{lead.pk}-{Interaction.objects.count()}-{kind}-{days_ago}",
    )


def flag(lead, *, at=None):
    """A pending rescore request for `lead`, as ingestion leaves one (without enqueueing a task)."""
    RescoreRequest.objects.create(lead_id=lead.pk, requested_at=at or timezone.now())


def rescore_pending(lead) -> bool:
    return RescoreRequest.objects.filter(lead_id=lead.pk).exists()


@contextmanager
def leads_locked_elsewhere(lead_ids, *, at_most: float = 10.0):
    """Another connection holds these leads' row locks, as a rescore writing them does, until the
    block ends or `at_most` seconds have passed (PostgreSQL; transactional tests)."""
    holding, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                list(Lead.objects.filter(pk__in=list(lead_ids)).select_for_update(no_key=True))
                holding.set()
                release.wait(at_most)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10), "the other connection did not get the locks"
        yield
    finally:
        release.set()
        thread.join()
