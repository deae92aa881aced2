"""Concurrency faults over HTTP, in-process with real threads on PostgreSQL (issue 7, items 1 and 5).

Each thread has its own Django test client and its own database connection, and all of them start
a round together at a barrier, so the requests really race inside PostgreSQL. No broker or worker is
needed (Celery runs eagerly here, after each commit), so these are not marked `integration`; they
still need PostgreSQL (SQLite runs one writer at a time) and skip, or fail under
ACCORD_REQUIRE_SERVICES=1, without it. Figures go to test-artifacts/integration/figures.json.
"""

import json
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from handoff.models import Handoff, Transition
from leads import ingest
from leads.models import Interaction, Lead
from scoring import services as scoring_services
from tests.conftest import skip_or_fail
from tests.handoff.factories import HandoffFactory
from tests.leads.factories import ApiTokenFactory, LeadFactory, UserFactory
from tests.scoring.builders import make_model

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

TOKEN = "concurrency-token-0123456789"


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        skip_or_fail("concurrent writers need PostgreSQL (SQLite runs one writer at a time)")


def race(workers: int, rounds: int, act, sign_in=None):
    """Run act(worker, round, client) on `workers` threads, all starting each round together (after
    sign_in(worker, client), if given). Returns results[round][worker] and the wall time."""
    barrier = threading.Barrier(workers)
    results = [[None] * workers for _ in range(rounds)]
    failures = []

    def run(worker):
        try:
            client = Client()
            if sign_in:
                sign_in(worker, client)
            for round_ in range(rounds):
                barrier.wait(timeout=120)
                results[round_][worker] = act(worker, round_, client)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(repr(exc))
            barrier.abort()
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not failures, failures
    return results, time.perf_counter() - started


# --- item 1: the same external_id 50 times at once -------------------------------------------------


def test_50_concurrent_posts_of_one_external_id_store_one_row_and_rescore_once(monkeypatch, figures):
    make_model(
        threshold=30,
        behavior=[{"kind": "demo_request", "label": "Demo request", "points": 40}],
        status="active",
    )
    UserFactory(username="sdr-dup", role="SDR")
    ApiTokenFactory(raw=TOKEN)
    requested = []
    real_request = scoring_services.leads_request_rescore

    def counting(*, lead_ids):
        requested.append(tuple(lead_ids))
        return real_request(lead_ids=lead_ids)

    monkeypatch.setattr(ingest.scoring_services, "leads_request_rescore", counting)
    body = json.dumps(
        {
            "external_id": "dup-evt-1",
            "email": "dup@example.com",
            "kind": "demo_request",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
    )

    def post(worker, round_, client):
        response = client.post(
            "/api/v1/interactions",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        )
        return response.status_code, response.json()

    [answers], seconds = race(50, 1, post)

    lead = Lead.objects.get(email="dup@example.com")
    statuses = [status for status, _ in answers]
    accepted = sum(body["accepted"] for _, body in answers)
    duplicates = sum(body["duplicates"] for _, body in answers)
    figures["duplicate_external_id"] = {
        "concurrent_posts": 50,
        "answers_202": statuses.count(202),
        "accepted": accepted,
        "duplicates": duplicates,
        "rows_stored": Interaction.objects.filter(external_id="dup-evt-1").count(),
        "leads": Lead.objects.count(),
        "rescore_requests": len(requested),
        "score": lead.score,
        "seconds": round(seconds, 2),
    }
    assert statuses == [202] * 50
    assert (accepted, duplicates) == (1, 49)
    assert sorted(body["accepted"] for _, body in answers) == [0] * 49 + [1]
    assert Interaction.objects.filter(external_id="dup-evt-1").count() == 1
    assert Lead.objects.count() == 1
    # One rescore effect: the winner flagged the lead once, the 49 duplicates flagged nothing; the
    # score counts the interaction once (40, not 80 or 2,000), and the lead became an MQL once.
    assert requested == [(lead.pk,)]
    assert (lead.score, lead.engagement_score, lead.stage, lead.rescore_requests.exists()) == (40, 40, "mql", False)
    assert Handoff.objects.filter(lead=lead).count() == 1
    assert Transition.objects.filter(lead=lead).count() == 1


# --- item 5: 20 concurrent accepts of one handoff, 100 times -------------------------------------------

ROUNDS, CONTENDERS = 100, 20
POOL_ROUNDS = 10


def test_20_concurrent_accepts_of_one_handoff_give_one_success_and_19_conflicts_100_times(figures):
    """Over HTTP through the board's endpoint, as htmx posts it. The handoff belongs to one SDR; the
    other 19 contenders are managers (who may act on every handoff), so every loser is a genuine
    conflict (409) rather than "not yours" (404)."""
    sdr = UserFactory(username="race-sdr", role="SDR")
    actors = [
        sdr,
        *(UserFactory(username=f"race-manager-{n}", role="Manager") for n in range(CONTENDERS - 1)),
    ]
    now = timezone.now()
    handoff_ids = []
    for n in range(ROUNDS):
        lead = LeadFactory(
            email=f"race{n}@example.com",
            stage="mql",
            owner=sdr,
            score=70,
            stage_changed_at=now - timedelta(hours=1),
        )
        handoff_ids.append(
            HandoffFactory(
                lead=lead,
                stage="mql",
                assignee=sdr,
                created_at=now - timedelta(hours=1),
                sla_due_at=now + timedelta(hours=23),
            ).pk
        )

    def accept(worker, round_, client):
        started = time.perf_counter()
        response = client.post(f"/handoffs/{handoff_ids[round_]}/accept", HTTP_HX_REQUEST="true")
        return response.status_code, time.perf_counter() - started

    results, seconds = race(
        CONTENDERS, ROUNDS, accept, sign_in=lambda w, client: client.force_login(actors[w])
    )

    latencies = sorted(latency for row in results for _, latency in row)
    per_round = [sorted(status for status, _ in row) for row in results]
    winners = [actors[row.index(min(row, key=lambda r: r[0]))].username for row in results]
    counted = (
        Transition.objects.filter(handoff_id__in=handoff_ids).values("handoff_id").annotate(n=Count("id"))
    )
    audit = {**dict.fromkeys(handoff_ids, 0), **{row["handoff_id"]: row["n"] for row in counted}}
    figures["concurrent_accepts"] = {
        "rounds": ROUNDS,
        "contenders_per_round": CONTENDERS,
        "requests": ROUNDS * CONTENDERS,
        "rounds_with_exactly_one_success": sum(1 for s in per_round if s.count(200) + s.count(302) == 1),
        "answers_409": sum(s.count(409) for s in per_round),
        "other_answers": sum(1 for s in per_round for code in s if code not in (200, 302, 409)),
        "won_by_the_sdr": winners.count(sdr.username),
        "audit_rows_per_handoff": sorted(set(audit.values())),
        "seconds": round(seconds, 1),
        "latency_ms_p50": round(1000 * statistics.median(latencies), 1),
        "latency_ms_p95": round(1000 * latencies[int(0.95 * len(latencies)) - 1], 1),
        "latency_ms_max": round(1000 * latencies[-1], 1),
    }
    for round_, statuses in enumerate(per_round):
        assert statuses == [200] + [409] * (CONTENDERS - 1), f"round {round_}: {statuses}"
    assert set(audit.values()) == {1}, "exactly one audit row per handoff"
    assert set(Handoff.objects.filter(pk__in=handoff_ids).values_list("stage", flat=True)) == {"sal"}
    assert set(Lead.objects.filter(handoffs__pk__in=handoff_ids).values_list("stage", flat=True)) == {"sal"}


def test_20_sdrs_racing_for_one_unassigned_mql_give_one_owner_and_one_audit_row(figures):
    """The pool: an unassigned MQL any SDR may accept (and so claim). One wins. Every loser gets the
    same 409 ("someone else took this lead"), whether its request read the handoff before or after
    the winner committed: it was on every SDR's board, so it is a conflict, not another SDR's secret
    (404). Losers change nothing."""
    sdrs = [UserFactory(username=f"pool-sdr-{n}", role="SDR") for n in range(CONTENDERS)]
    now = timezone.now()
    handoff_ids = []
    for n in range(POOL_ROUNDS):
        lead = LeadFactory(
            email=f"pool{n}@example.com", stage="mql", owner=None, score=70, stage_changed_at=now
        )
        handoff_ids.append(
            HandoffFactory(
                lead=lead, stage="mql", assignee=None, created_at=now, sla_due_at=now + timedelta(hours=24)
            ).pk
        )

    def accept(worker, round_, client):
        response = client.post(f"/handoffs/{handoff_ids[round_]}/accept", HTTP_HX_REQUEST="true")
        taken = "Someone else took this lead first" in response.content.decode()
        return response.status_code, taken

    results, seconds = race(
        CONTENDERS, POOL_ROUNDS, accept, sign_in=lambda w, client: client.force_login(sdrs[w])
    )

    codes = [[code for code, _ in row] for row in results]
    figures["pool_accepts"] = {
        "rounds": POOL_ROUNDS,
        "sdrs_per_round": CONTENDERS,
        "rounds_with_exactly_one_success": sum(1 for row in codes if row.count(200) == 1),
        "answers_409": sum(row.count(409) for row in codes),
        "answers_409_saying_taken": sum(1 for row in results for code, taken in row if code == 409 and taken),
        "answers_404": sum(row.count(404) for row in codes),
        "other_answers": sum(1 for row in codes for code in row if code not in (200, 404, 409)),
        "seconds": round(seconds, 1),
    }
    for round_, row in enumerate(results):
        assert sorted(code for code, _ in row) == [200] + [409] * (CONTENDERS - 1), f"round {round_}: {row}"
        assert all(taken for code, taken in row if code == 409), "one message for every loser"
        winner = sdrs[codes[round_].index(200)]
        handoff = Handoff.objects.select_related("lead").get(pk=handoff_ids[round_])
        assert (handoff.stage, handoff.assignee_id, handoff.lead.owner_id) == ("sal", winner.pk, winner.pk)
        assert list(Transition.objects.filter(handoff=handoff).values_list("actor_id", flat=True)) == [
            winner.pk
        ]
