"""Rescoring with a real Celery worker on a real Redis, driven over HTTP through gunicorn."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from leads.models import Lead
from leads.services import api_token_create
from tests.integration.conftest import wait_until
from tests.leads.factories import UserFactory
from tests.scoring.builders import make_model

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def setup(stack):
    make_model(
        threshold=60,
        fit=[("VP title", "job_title", "contains", "vp", 20)],
        behavior=[{"kind": "demo_request", "label": "Demo request", "points": 40},
                  {"kind": "page_view", "label": "Page view", "points": 1}],
        status="active",
    )
    UserFactory(username="sdr-int", role="SDR")
    _, token = api_token_create(name="integration")
    return token


def interaction(n, email, kind="demo_request", **lead):
    return {
        "external_id": f"int-{email}-{n}",
        "email": email,
        "kind": kind,
        "occurred_at": datetime.now(UTC).isoformat(),
        "lead": lead,
    }


def test_a_posted_interaction_rescores_and_promotes_its_lead_within_seconds(stack, setup):
    started = time.monotonic()
    status, body = stack.post(
        "/api/v1/interactions", {"interactions": [interaction(1, "vp@int.example", job_title="VP Sales")]}, setup
    )
    assert (status, body) == (202, {"accepted": 1, "duplicates": 0})

    def promoted():
        code, lead = stack.get("/api/v1/leads/vp@int.example", token=setup)
        return code == 200 and lead["stage"] == "mql" and lead["score"] == 60 and lead

    lead = wait_until(promoted, timeout=10, what="the worker to rescore and promote the lead")
    print(f"score and stage visible {time.monotonic() - started:.2f}s after the POST")
    assert lead["owner"] == "sdr-int"
    assert {row["label"] for row in lead["breakdown"]} == {"VP title", "Demo request"}


def test_with_the_broker_down_posts_succeed_and_the_sweep_rescores_once_it_is_back(stack, setup):
    stack.redis.stop()
    try:
        emails = [f"lead{i}@outage.example" for i in range(5)]
        for n in range(4):
            status, body = stack.post(
                "/api/v1/interactions",
                {"interactions": [interaction(n, email, kind="page_view") for email in emails]},
                setup,
            )
            assert (status, body) == (202, {"accepted": 5, "duplicates": 0})
        assert Lead.objects.filter(email__in=emails, rescore_requests__isnull=False).distinct().count() == 5
        assert set(Lead.objects.filter(email__in=emails).values_list("score", flat=True)) == {0}
    finally:
        stack.redis.start()

    wait_until(
        lambda: set(Lead.objects.filter(email__in=emails).values_list("score", flat=True)) == {4},
        timeout=30,
        what="the sweep to rescore every lead after the broker returned",
    )
    assert not Lead.objects.filter(email__in=emails, rescore_requests__isnull=False).exists()


def test_an_interaction_dated_seconds_ahead_counts_once_its_time_comes(stack, setup):
    """Senders' clocks run a little fast (the API allows 5 minutes): scoring counts an interaction
    from its time on, so its lead is rescored again then, not at its next interaction."""
    ahead = datetime.now(UTC) + timedelta(seconds=3)
    item = {**interaction(1, "ahead@int.example", job_title="VP Sales"), "occurred_at": ahead.isoformat()}
    assert stack.post("/api/v1/interactions", {"interactions": [item]}, setup)[0] == 202

    def scored(points):
        def check():
            code, lead = stack.get("/api/v1/leads/ahead@int.example", token=setup)
            return code == 200 and lead["scored_at"] and lead["score"] == points and lead
        return check

    wait_until(scored(20), timeout=10, what="the first rescore (the interaction not yet due)")
    lead = wait_until(scored(60), timeout=15, what="the rescore when the interaction is due")
    assert lead["stage"] == "mql"
    assert {row["label"] for row in lead["breakdown"]} == {"VP title", "Demo request"}
