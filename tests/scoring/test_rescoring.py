"""Rescoring through the services: one lead, bursts, the sweep, bulk runs, decay, publishing."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from handoff.models import Handoff, Transition
from leads.models import Interaction, Lead
from scoring import engine, services, tasks
from scoring.models import RescoreRequest, RescoreRun, ScoringModel
from tests.leads.factories import LeadFactory
from tests.scoring.builders import flag, interact, leads_locked_elsewhere, make_model, rescore_pending

pytestmark = pytest.mark.django_db

DEMO = {"kind": "demo_request", "label": "Demo request", "points": 40, "within_days": 90}
PRICING = {"kind": "pricing_page_view", "label": "Pricing", "points": 10, "max_points": 30, "half_life_days": 14}
VP = ("VP title", "job_title", "contains", "vp", 20)


@pytest.fixture
def model():
    return make_model(threshold=60, fit=[VP], behavior=[DEMO, PRICING], status="active")


def request_rescore(lead, capture):
    with capture(execute=True):
        services.leads_request_rescore(lead_ids=[lead.pk])


def test_an_interaction_rescores_its_lead_after_commit(model, django_capture_on_commit_callbacks):
    lead = LeadFactory(job_title="VP Sales")
    interact(lead, "pricing_page_view")

    request_rescore(lead, django_capture_on_commit_callbacks)

    lead.refresh_from_db()
    assert (lead.score, lead.fit_score, lead.engagement_score) == (30, 20, 10)
    assert not rescore_pending(lead) and lead.scored_at is not None
    assert [row["label"] for row in lead.score_breakdown] == ["VP title", "Pricing"]


def test_a_burst_for_one_lead_is_scored_once(model):
    lead = LeadFactory()
    for _ in range(5):
        interact(lead, "pricing_page_view")
    services.leads_request_rescore(lead_ids=[lead.pk])  # flags; callbacks not run yet

    outcomes = [services.leads_rescore(lead_ids=[lead.pk], only_flagged=True) for _ in range(5)]

    assert [o.scored for o in outcomes] == [1, 0, 0, 0, 0]
    lead.refresh_from_db()
    assert lead.engagement_score == 30  # five views, capped at 30


def test_a_lead_crossing_the_threshold_becomes_an_mql_with_a_handoff_and_an_sdr(model, sdr, django_capture_on_commit_callbacks):
    lead = LeadFactory(job_title="VP Marketing")
    interact(lead, "demo_request")

    request_rescore(lead, django_capture_on_commit_callbacks)

    lead.refresh_from_db()
    assert lead.stage == "mql" and lead.score == 60 and lead.owner == sdr
    handoff = Handoff.objects.get(lead=lead)
    assert (handoff.assignee, handoff.score_at_mql, handoff.model_version) == (sdr, 60, "Test model v0")
    assert handoff.sla_due_at == handoff.created_at + timedelta(hours=24)
    transition = Transition.objects.get(lead=lead)
    assert (transition.from_stage, transition.to_stage, transition.actor, transition.score) == ("lead", "mql", None, 60)


def test_below_the_threshold_a_lead_stays_a_lead(model, django_capture_on_commit_callbacks):
    lead = LeadFactory(job_title="Analyst")
    interact(lead, "demo_request")
    request_rescore(lead, django_capture_on_commit_callbacks)
    lead.refresh_from_db()
    assert (lead.stage, lead.score) == ("lead", 40)
    assert not Handoff.objects.exists()


def test_min_fit_keeps_engagement_alone_from_qualifying(django_capture_on_commit_callbacks):
    make_model(threshold=60, min_fit=20, fit=[VP], behavior=[DEMO, {**DEMO, "label": "Demo again"}], status="active")
    lead = LeadFactory(job_title="Intern")
    interact(lead, "demo_request")
    request_rescore(lead, django_capture_on_commit_callbacks)
    lead.refresh_from_db()
    assert (lead.score, lead.stage) == (80, "lead")


def test_a_recycled_lead_needs_new_engagement_after_its_rejection(model, django_capture_on_commit_callbacks):
    lead = LeadFactory(job_title="VP Marketing")
    interact(lead, "demo_request", days_ago=3)
    Lead.objects.filter(pk=lead.pk).update(stage="recycled", stage_changed_at=timezone.now() - timedelta(days=1))

    request_rescore(lead, django_capture_on_commit_callbacks)
    lead.refresh_from_db()
    assert (lead.stage, lead.score) == ("recycled", 60), "old engagement alone does not bounce it back"

    interact(lead, "pricing_page_view")
    request_rescore(lead, django_capture_on_commit_callbacks)
    lead.refresh_from_db()
    assert lead.stage == "mql"
    assert Transition.objects.get(lead=lead).from_stage == "recycled"


def test_with_the_broker_down_the_request_succeeds_and_the_sweep_catches_up(model, monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(*args, **kwargs):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.rescore_leads, "apply_async", broker_down)
    lead = LeadFactory(job_title="VP Sales")
    interact(lead, "pricing_page_view")

    request_rescore(lead, django_capture_on_commit_callbacks)  # does not raise
    lead.refresh_from_db()
    assert rescore_pending(lead) and lead.score == 0

    assert services.rescore_sweep(grace_seconds=0).scored == 1
    lead.refresh_from_db()
    assert lead.score == 30 and not rescore_pending(lead)


def test_the_sweep_leaves_recently_flagged_leads_to_their_task(model):
    lead = LeadFactory()
    flag(lead)
    assert services.rescore_sweep(grace_seconds=30).scored == 0


def test_publishing_rescores_every_lead_and_archives_the_previous_model(model, django_capture_on_commit_callbacks):
    leads = [LeadFactory(job_title=title) for title in ("VP Sales", "Engineer", "CTO")]
    interact(leads[1], "pricing_page_view")
    new = make_model(name="CTO model", threshold=100, fit=[("CTO", "job_title", "equals", "cto", 25)])

    with django_capture_on_commit_callbacks(execute=True):
        run = services.model_publish(model=new, by=None)

    run.refresh_from_db()
    assert (run.status, run.total, run.done, run.percent) == ("done", 3, 3, 100)
    assert [Lead.objects.get(pk=lead.pk).score for lead in leads] == [0, 0, 25]
    model.refresh_from_db()
    new.refresh_from_db()
    assert (model.status, new.status, new.version) == ("archived", "active", 1)
    assert ScoringModel.objects.filter(status="active").count() == 1


def test_bulk_and_single_lead_rescoring_agree(model, django_capture_on_commit_callbacks):
    leads = [LeadFactory(job_title=t) for t in ("VP Sales", "Analyst", "vp ops", "")]
    for i, lead in enumerate(leads):
        for d in range(i * 3):
            interact(lead, "pricing_page_view", days_ago=d * 5)
    with django_capture_on_commit_callbacks(execute=True):
        services.rescore_run_start(model=model, reason="test")
    bulk = {lead.pk: (lead.score, lead.score_breakdown) for lead in Lead.objects.all()}

    Lead.objects.update(score=0, score_breakdown=[])
    services.leads_rescore(lead_ids=[lead.pk for lead in leads])
    single = {lead.pk: (lead.score, lead.score_breakdown) for lead in Lead.objects.all()}

    assert bulk == single


def test_editing_the_active_model_bumps_its_version_and_rescores(model, django_capture_on_commit_callbacks):
    lead = LeadFactory(job_title="VP Sales")
    model.fit_rules.update(points=5)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.model_rules_changed(model=model)
    lead.refresh_from_db()
    assert run is not None and lead.score == 5
    assert ScoringModel.objects.get(pk=model.pk).version == 1


def test_a_fit_edit_rescores_fit_from_the_stored_engagement(model, django_capture_on_commit_callbacks):
    """Only fit rules changed: every lead gets the new fit; its engagement stays as last scored
    (scored_at kept), and a lead the new fit lifts over the threshold becomes an MQL."""
    vp, analyst = LeadFactory(job_title="VP Sales"), LeadFactory(job_title="Analyst")
    for lead in (vp, analyst):
        interact(lead, "demo_request")
    services.leads_rescore(lead_ids=[vp.pk, analyst.pk])
    Lead.objects.filter(pk=vp.pk).update(stage="recycled")  # so the edit cannot promote it
    before = dict(Lead.objects.values_list("pk", "scored_at"))
    previous = model.to_spec()
    model.fit_rules.update(points=25)
    model.fit_rules.create(label="Analyst", field="job_title", operator="contains", value="analyst", points=30)

    with django_capture_on_commit_callbacks(execute=True):
        run = services.model_rules_changed(model=model, previous=previous)

    run.refresh_from_db()
    got = {lead.pk: lead for lead in Lead.objects.all()}
    assert (run.scope, run.status, run.total, run.changed, run.promoted) == ("fit", "done", 2, 2, 1)
    assert (got[vp.pk].score, got[vp.pk].fit_score, got[vp.pk].engagement_score) == (65, 25, 40)
    assert (got[analyst.pk].score, got[analyst.pk].stage) == (70, "mql")
    assert [r["label"] for r in got[analyst.pk].score_breakdown] == ["Demo request", "Analyst"]
    if connection.vendor == "postgresql":  # SQLite rescores in full, which gives the same scores here
        assert got[vp.pk].scored_at == before[vp.pk]


def test_a_threshold_edit_promotes_without_rescoring(model, sdr, django_capture_on_commit_callbacks):
    lead = LeadFactory(job_title="VP Sales")
    interact(lead, "pricing_page_view")
    services.leads_rescore(lead_ids=[lead.pk])  # 30: under the threshold of 60
    scored_at = Lead.objects.get(pk=lead.pk).scored_at
    previous = model.to_spec()
    ScoringModel.objects.filter(pk=model.pk).update(mql_threshold=30)
    model.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        run = services.model_rules_changed(model=model, previous=previous)

    run.refresh_from_db()
    lead.refresh_from_db()
    assert (run.scope, run.status, run.total, run.promoted) == ("threshold", "done", 1, 1)
    assert (lead.stage, lead.score, lead.scored_at) == ("mql", 30, scored_at)
    assert Transition.objects.get(lead=lead).to_stage == "mql"


def test_an_edit_without_previous_definition_rescores_everything(model, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.model_rules_changed(model=model)
    assert run.scope == "all"


def test_editing_a_draft_starts_no_rescore():
    draft = make_model(name="Draft")
    assert services.model_rules_changed(model=draft) is None
    assert not RescoreRun.objects.exists()


def test_preview_counts_changes_and_new_mqls_without_writing(model):
    hot = LeadFactory(job_title="VP Sales")
    interact(hot, "demo_request")
    LeadFactory(job_title="Analyst")
    draft = make_model(name="Draft", threshold=60, fit=[VP], behavior=[DEMO])

    impact = services.model_preview_impact(model=draft)

    assert (impact.total, impact.changed, impact.new_mqls) == (2, 1, 1)
    assert impact.sample == [(hot.email, 0, 60)]
    hot.refresh_from_db()
    assert (hot.score, hot.stage) == (0, "lead")


def test_decay_lowers_scores_over_time_with_no_new_interactions(model, django_capture_on_commit_callbacks):
    lead = LeadFactory(job_title="Analyst")
    interact(lead, "pricing_page_view", days_ago=0)
    services.leads_rescore(lead_ids=[lead.pk])
    lead.refresh_from_db()
    assert lead.score == 10

    with django_capture_on_commit_callbacks(execute=True):
        run = services.rescore_decay()
    assert run is not None
    # Two weeks later the same view is worth half.
    services.leads_rescore(lead_ids=[lead.pk], now=timezone.now() + timedelta(days=14))
    lead.refresh_from_db()
    assert lead.score == 5


def test_decay_does_nothing_when_no_rule_depends_on_time(django_capture_on_commit_callbacks):
    make_model(behavior=[{"kind": "page_view", "label": "Views", "points": 1}], status="active")
    assert services.rescore_decay() is None


def test_without_an_active_model_flags_are_cleared_and_scores_kept():
    lead = LeadFactory(score=7)
    flag(lead)
    services.leads_rescore(lead_ids=[lead.pk], only_flagged=True)
    lead.refresh_from_db()
    assert (lead.score, rescore_pending(lead)) == (7, False)


def test_a_stalled_run_is_restarted_by_the_sweep(model, monkeypatch):
    run = RescoreRun.objects.create(model=model, reason="lost", created_at=timezone.now() - timedelta(minutes=5))
    LeadFactory(job_title="VP Sales")
    sent = []
    monkeypatch.setattr(tasks, "enqueue_rescore_run", lambda run_id: sent.append(run_id))
    services.rescore_sweep(grace_seconds=30)
    assert sent == [run.pk]


def test_a_redelivered_run_gives_the_same_result_as_one_run(model, django_capture_on_commit_callbacks):
    lead = LeadFactory(job_title="VP Sales")
    interact(lead, "demo_request")
    with django_capture_on_commit_callbacks(execute=True):
        run = services.rescore_run_start(model=model, reason="test")
    first = Lead.objects.values("score", "stage").get(pk=lead.pk)
    RescoreRun.objects.filter(pk=run.pk).update(status="running")
    services.rescore_run_execute(run_id=run.pk)
    assert Lead.objects.values("score", "stage").get(pk=lead.pk) == first == {"score": 60, "stage": "mql"}
    assert Handoff.objects.filter(lead=lead).count() == 1


def test_a_bulk_run_agrees_exactly_with_the_engine_on_varied_data(django_capture_on_commit_callbacks):
    """On PostgreSQL the bulk run aggregates in SQL; it must give the engine's exact answer."""
    import random

    from leads.models import Interaction, InteractionKind
    from scoring import engine

    rng = random.Random(7)
    model = make_model(
        threshold=1000,  # nobody is promoted: this test is about scores
        fit=[VP, ("Big", "company_size", "between", [200, 5000], 15), ("Free", "email_domain", "in", ["gmail.com"], -10)],
        behavior=[
            PRICING,
            {**DEMO, "points": 40},
            {"kind": "content_download", "label": "Whitepaper", "points": 8, "half_life_days": 30,
             "property": {"key": "asset_type", "operator": "equals", "value": "Whitepaper"}},
            {"kind": "content_download", "label": "Long read", "points": 3, "max_points": 12,
             "property": {"key": "pages", "operator": "gte", "value": 20}},
            {"kind": "page_view", "label": "Views", "points": 0.7, "max_points": 9.5, "half_life_days": 3.5},
            {"kind": "unsubscribe", "label": "Unsub", "points": -25, "max_points": 30},
        ],
        status="active",
    )
    kinds = {k.slug: k for k in InteractionKind.objects.all()}
    now = timezone.now()
    rows = []
    for n in range(120):
        lead = LeadFactory(
            job_title=rng.choice(["VP Sales", "Analyst", "", "vp of ops"]),
            company_size=rng.choice([None, 10, 200, 4999, 5001]),
            email=f"p{n}@{rng.choice(['gmail.com', 'acme.io'])}",
        )
        for m in range(rng.randint(0, 25)):
            kind = rng.choice(["pricing_page_view", "demo_request", "content_download", "page_view", "unsubscribe"])
            props = {"asset_type": rng.choice(["whitepaper", "WHITEPAPER ", "ebook"]), "pages": rng.choice([5, "25", 40, "n/a"])}
            rows.append(Interaction(
                lead=lead, kind=kinds[kind], external_id=f"v-{n}-{m}", properties=props,
                occurred_at=now - timedelta(days=rng.uniform(-2, 200)),
            ))
    Interaction.objects.bulk_create(rows)

    with django_capture_on_commit_callbacks(execute=True):
        run = services.rescore_run_start(model=model, reason="test")
    run.refresh_from_db()
    spec = model.to_spec()
    for lead in Lead.objects.all():
        facts = [engine.InteractionFact(i.kind.slug, i.occurred_at, i.properties, i.external_id)
                 for i in lead.interactions.select_related("kind")]
        expected = engine.score_lead(spec, engine.lead_facts(lead), facts, run.started_at)
        assert (lead.score, lead.fit_score, lead.engagement_score, lead.score_breakdown) == (
            expected.score, expected.fit_score, expected.engagement_score, list(expected.breakdown)
        ), lead.email


def test_after_a_failed_publish_enqueueing_backs_off_for_a_few_seconds(monkeypatch):
    calls = []

    def broker_down(*args, **kwargs):
        calls.append(args)
        raise BrokerError("Connection refused")

    monkeypatch.setattr(tasks.rescore_leads, "apply_async", broker_down)
    clock = [1000.0]
    monkeypatch.setattr(tasks.time, "monotonic", lambda: clock[0])

    tasks.enqueue_rescore([1])
    tasks.enqueue_rescore([2])  # within the back-off: not even tried
    assert len(calls) == 1
    clock[0] += tasks.BROKER_BACKOFF_SECONDS + 0.1
    tasks.enqueue_rescore([3])
    assert len(calls) == 2


def test_an_interaction_that_arrives_while_a_rescore_is_scoring_stays_requested(model, monkeypatch):
    lead = LeadFactory(job_title="VP Sales")
    interact(lead, "pricing_page_view")
    services.leads_request_rescore(lead_ids=[lead.pk])
    real_score = services._score

    def score_while_an_interaction_arrives(compiled, leads, now):
        result = real_score(compiled, leads, now)
        interact(lead, "demo_request")  # committed by an ingestion meanwhile...
        flag(lead)  # ...with its own request
        return result

    monkeypatch.setattr(services, "_score", score_while_an_interaction_arrives)
    outcome = services.leads_rescore(lead_ids=[lead.pk], only_flagged=True)

    assert (outcome.scored, outcome.skipped) == (1, 0)
    lead.refresh_from_db()
    # The score of what was read is written, and only the request that was read is gone.
    assert lead.score == 30 and rescore_pending(lead)
    monkeypatch.setattr(services, "_score", real_score)
    services.leads_rescore(lead_ids=[lead.pk], only_flagged=True)
    lead.refresh_from_db()
    assert lead.score == 70 and not rescore_pending(lead)


def _arrives_just_before(monkeypatch, reader: str, lead) -> None:
    """An interaction (dated now) and its request are committed just before the rescore reads the
    lead's requests with `reader` (a function of scoring.rescore_requests)."""
    from scoring import rescore_requests

    real, arrived = getattr(rescore_requests, reader), []

    def read(*args, **kwargs):
        if not arrived:
            arrived.append(True)
            interact(lead, "demo_request")
            flag(lead)
        return real(*args, **kwargs)

    monkeypatch.setattr(rescore_requests, reader, read)


@pytest.mark.parametrize(
    "path",
    [
        "single lead",
        pytest.param("backlog drain", marks=pytest.mark.skipif(
            connection.vendor != "postgresql", reason="the set-wise drain is PostgreSQL's (SQLite drains lead by lead)")),
        "bulk run",
    ],
)
def test_an_interaction_whose_request_a_rescore_takes_counts_in_the_score_it_writes(
    path, model, monkeypatch, django_capture_on_commit_callbacks
):
    """A rescore that deletes a request must count its interaction. Runs used to score every chunk
    as of the run's start: an interaction arriving mid-run lost its request and stayed out of the
    score (until the lead's next interaction); the other paths had the same gap, a millisecond wide."""
    lead = LeadFactory(job_title="VP Sales")
    interact(lead, "pricing_page_view")
    if path == "single lead":
        flag(lead)
        _arrives_just_before(monkeypatch, "pending", lead)
        services.leads_rescore(lead_ids=[lead.pk], only_flagged=True)
    elif path == "backlog drain":
        flag(lead, at=timezone.now() - timedelta(seconds=5))
        _arrives_just_before(monkeypatch, "take", lead)
        services.rescore_backlog()
    else:
        _arrives_just_before(monkeypatch, "take", lead)
        with django_capture_on_commit_callbacks(execute=True):
            services.rescore_run_start(model=model, reason="test")

    lead.refresh_from_db()
    assert (lead.score, lead.stage, rescore_pending(lead)) == (70, "mql", False)


def test_a_rescore_never_overwrites_a_score_computed_from_newer_data(model, monkeypatch):
    """Two rescores of one lead overlap; the one that read first finishes last: it must not
    replace the newer score with its older one."""
    lead = LeadFactory(job_title="VP Sales")
    interact(lead, "pricing_page_view")
    flag(lead)
    real_score = services._score
    overlapped = []

    def a_newer_rescore_finishes_first(compiled, leads, now):
        result = real_score(compiled, leads, now)
        if not overlapped:
            overlapped.append(True)
            interact(lead, "demo_request")
            flag(lead)
            assert services.leads_rescore(lead_ids=[lead.pk], only_flagged=True).scored == 1
        return result

    monkeypatch.setattr(services, "_score", a_newer_rescore_finishes_first)
    outcome = services.leads_rescore(lead_ids=[lead.pk], only_flagged=True)

    assert (outcome.scored, outcome.skipped) == (0, 1)
    lead.refresh_from_db()
    assert lead.score == 70 and not rescore_pending(lead)


def test_without_a_broker_a_database_failure_in_the_inline_rescore_does_not_fail_the_caller(model, monkeypatch):
    """Eager mode runs the rescore inline after the request committed: if the database goes away
    then, the request has still succeeded and the lead stays flagged."""
    from django.db import OperationalError

    lead = LeadFactory()
    flag(lead)

    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "leads_rescore_requested", database_gone)
    tasks.enqueue_rescore([lead.pk])  # does not raise
    assert rescore_pending(lead)


def test_a_marketer_editing_a_lead_in_the_admin_rescores_its_fit(model, marketer, client_for, django_capture_on_commit_callbacks):
    lead = LeadFactory(job_title="Analyst", source="paid")
    services.leads_rescore(lead_ids=[lead.pk])
    lead.refresh_from_db()
    assert lead.fit_score == 0
    data = {
        "email": lead.email, "first_name": lead.first_name, "last_name": lead.last_name,
        "job_title": "VP Sales", "company": lead.company, "country": lead.country, "source": lead.source,
        "interactions-TOTAL_FORMS": "0", "interactions-INITIAL_FORMS": "0",
        "transitions-TOTAL_FORMS": "0", "transitions-INITIAL_FORMS": "0",
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(marketer).post(f"/admin/leads/lead/{lead.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    lead.refresh_from_db()
    assert (lead.job_title, lead.fit_score, lead.score) == ("VP Sales", 20, 20)
    assert not rescore_pending(lead)


def test_a_bulk_run_promotes_new_mqls_and_applies_the_recycled_lead_rule(
    model, sdr, django_capture_on_commit_callbacks
):
    fresh, stale, engaged = (LeadFactory(job_title="VP Marketing") for _ in range(3))
    for lead in (fresh, stale, engaged):
        interact(lead, "demo_request", days_ago=3)
    rejected = timezone.now() - timedelta(days=1)
    Lead.objects.filter(pk__in=[stale.pk, engaged.pk]).update(stage="recycled", stage_changed_at=rejected)
    interact(engaged, "pricing_page_view")  # positive engagement since the rejection

    with django_capture_on_commit_callbacks(execute=True):
        run = services.rescore_run_start(model=model, reason="test")
    run.refresh_from_db()
    stages = dict(Lead.objects.values_list("pk", "stage"))
    assert (stages[fresh.pk], stages[stale.pk], stages[engaged.pk]) == ("mql", "recycled", "mql")
    assert run.promoted == 2
    handoff = Handoff.objects.get(lead=fresh)
    assert handoff.assignee == sdr and handoff.score_at_mql == 60
    assert handoff.breakdown_at_mql == Lead.objects.get(pk=fresh.pk).score_breakdown
    assert Transition.objects.get(lead=engaged).from_stage == "recycled"


def test_a_bulk_run_agrees_exactly_with_the_engine_where_sql_defers_to_python(
    django_capture_on_commit_callbacks, monkeypatch
):
    """Greek capital sigma (lower-cased by context) and property values SQL does not classify
    itself are scored by the engine within the bulk run; every lead still gets the engine's answer."""
    from django.db import connection

    from scoring import bulk, engine

    deferred, by_engine = [], bulk._rescore_with_engine

    def spy(compiled, lead_ids, *args, **kwargs):
        deferred.extend(lead_ids)
        return by_engine(compiled, lead_ids, *args, **kwargs)

    monkeypatch.setattr(bulk, "_rescore_with_engine", spy)

    model = make_model(
        threshold=1000,
        fit=[("Greek", "job_title", "equals", "οδος", 7), VP],
        behavior=[{"kind": "content_download", "label": "Pages", "points": 3,
                   "property": {"key": "pages", "operator": "contains", "value": "5"}}],
        status="active",
    )
    odd = [LeadFactory(job_title="ΟΔΟΣ"), LeadFactory(job_title="VP")]
    interact(odd[1], "content_download", properties={"pages": 2.5})  # str(2.5) contains "5": Python only
    interact(odd[1], "content_download", properties={"pages": "15"})
    plain = LeadFactory(job_title="vp of ops")
    interact(plain, "content_download", properties={"pages": "50"})
    with django_capture_on_commit_callbacks(execute=True):
        run = services.rescore_run_start(model=model, reason="test")
    run.refresh_from_db()
    spec = model.to_spec()
    for lead in Lead.objects.all():
        facts = [engine.InteractionFact(i.kind.slug, i.occurred_at, i.properties, i.external_id)
                 for i in lead.interactions.select_related("kind")]
        expected = engine.score_lead(spec, engine.lead_facts(lead), facts, run.started_at)
        assert (lead.score, lead.fit_score, lead.engagement_score, lead.score_breakdown) == (
            expected.score, expected.fit_score, expected.engagement_score, list(expected.breakdown)
        ), lead.job_title
    assert Lead.objects.get(pk=odd[0].pk).fit_score == 7
    assert Lead.objects.get(pk=odd[1].pk).engagement_score == 6
    if connection.vendor == "postgresql":
        assert deferred == [odd[0].pk, odd[1].pk]


def test_a_worker_that_fell_behind_rescores_its_backlog_in_one_set(model, sdr, monkeypatch):
    """Requests older than a second are a backlog: the next task takes them all at once (on
    PostgreSQL in one SQL statement, like a bulk run's chunk), and promotes those that qualify."""
    from scoring import sqlscore

    statements = []
    monkeypatch.setattr(sqlscore, "rescore", lambda *a, _real=sqlscore.rescore, **k: statements.append(a[2]) or _real(*a, **k))
    leads = [LeadFactory(job_title="VP Sales") for _ in range(30)]
    for lead in leads:
        interact(lead, "pricing_page_view")
        flag(lead, at=timezone.now() - timedelta(seconds=5))
    hot = LeadFactory(job_title="VP Sales")
    interact(hot, "demo_request")
    flag(hot, at=timezone.now() - timedelta(seconds=5))
    fresh = LeadFactory(job_title="VP Sales")
    flag(fresh)  # just arrived: its own task is on its way

    outcome = services.rescore_backlog()

    assert (outcome.scored, outcome.promoted) == (31, 1)
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("score", flat=True)) == {30}
    assert (Lead.objects.get(pk=hot.pk).score, Lead.objects.get(pk=hot.pk).stage) == (60, "mql")
    assert Transition.objects.get(lead=hot).to_stage == "mql"
    assert not any(rescore_pending(lead) for lead in [*leads, hot]) and rescore_pending(fresh)
    if connection.vendor == "postgresql":
        assert [len(ids) for ids in statements] == [31]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_drains_at_once_split_a_backlog_instead_of_doing_it_twice():
    from django.db import connection, transaction

    from scoring import rescore_requests

    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED needs PostgreSQL (SQLite runs one writer at a time)")
    leads = [LeadFactory() for _ in range(10)]
    for lead in leads:
        flag(lead, at=timezone.now() - timedelta(seconds=5))
    claimed_elsewhere, started, done = {}, threading.Event(), threading.Event()

    def other_drain():
        try:
            with transaction.atomic():
                claimed_elsewhere.update(rescore_requests.claim(older_than=timezone.now(), limit=4))
                started.set()
                done.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_drain)
    thread.start()
    try:
        assert started.wait(10)
        with transaction.atomic():
            mine = rescore_requests.claim(older_than=timezone.now(), limit=100)
            # What the other drain holds is neither claimed here nor deleted by a plain forget.
            rescore_requests.forget(claimed_elsewhere, claimed_elsewhere)
    finally:
        done.set()
        thread.join()
    assert len(claimed_elsewhere) == 4 and len(mine) == 6
    assert not set(mine) & set(claimed_elsewhere)
    assert sum(rescore_pending(lead) for lead in leads) == 10


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="runs use threads on PostgreSQL only")
def test_a_run_on_several_threads_scores_every_lead_like_one_thread(model, settings, monkeypatch):
    """ACCORD_RESCORE_THREADS threads share a run's chunks, each on its own connection: the same
    scores and counts as one thread, and the chunks really are spread over the threads."""
    import threading

    from scoring import bulk

    leads = [LeadFactory(job_title="VP Sales" if n % 2 else "Analyst") for n in range(23)]
    for n, lead in enumerate(leads):
        for d in range(n % 4):
            interact(lead, "pricing_page_view", days_ago=d)
        if n % 5 == 0:
            interact(lead, "demo_request")
    monkeypatch.setattr(services, "BULK_CHUNK", 4)
    workers, step = set(), bulk.rescore_chunk

    def rescore_chunk(*args, **kwargs):
        workers.add(threading.current_thread().name)
        return step(*args, **kwargs)

    def run_with(threads):
        settings.ACCORD_RESCORE_THREADS = threads
        Lead.objects.update(score=0, fit_score=0, engagement_score=0, score_breakdown=[], scored_at=None)
        run = services.rescore_run_execute(run_id=RescoreRun.objects.create(model=model, reason="test").pk)
        scores = dict(Lead.objects.values_list("pk", "score"))
        return (run.status, run.done, run.total), scores

    one = run_with(1)
    monkeypatch.setattr(bulk, "rescore_chunk", rescore_chunk)
    three = run_with(3)
    assert one == three and one[0] == ("done", 23, 23)
    assert len(workers) > 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_a_chunk_skips_the_leads_another_rescore_holds_and_names_them(model):
    """A run's chunk does not wait for a lead another rescore is writing: it skips it and names it
    (the run asks for it again). After an edit of fit rules, only the leads the edited rules match
    are locked, so only those can be skipped; the rest of the chunk is refitted."""
    import dataclasses

    from django.db import transaction

    from scoring import bulk, edit_scope

    held_vp, held_analyst, free_vp = (
        LeadFactory(job_title=title) for title in ("VP Sales", "Analyst", "VP Ops")
    )
    compiled = services._compile(model)
    span = bulk.Span.of([held_vp.pk, held_analyst.pk, free_vp.pk])
    with transaction.atomic():
        bulk.rescore_chunk(compiled, span, None, promote=lambda q: 0)
    before = compiled.spec
    after = dataclasses.replace(
        before, fit_rules=tuple(dataclasses.replace(rule, points=25) for rule in before.fit_rules)
    )
    edited = dataclasses.replace(compiled, spec=after)
    changed = [engine.FitRuleSpec(**rule) for rule in edit_scope.changed_fit_rules(before, after)]
    with leads_locked_elsewhere([held_vp.pk, held_analyst.pk]):
        with transaction.atomic():
            refit = bulk.refit_chunk(edited, span, None, promote=lambda q: 0, changed_fit_rules=changed)
        refitted = Lead.objects.get(pk=free_vp.pk).score
        with transaction.atomic():
            rescore = bulk.rescore_chunk(compiled, span, None, promote=lambda q: 0)
    assert (refit.skipped, refit.leads) == ([held_vp.pk], 3)  # the analyst's score cannot change: not even locked
    assert (rescore.skipped, rescore.leads) == ([held_vp.pk, held_analyst.pk], 3)
    assert (refitted, Lead.objects.get(pk=free_vp.pk).score) == (25, 20)  # edited, then the model's own rule again


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-wise path is PostgreSQL's")
def test_a_rescore_task_scores_its_flagged_leads_in_one_statement(model, monkeypatch):
    """A task's leads that still have a request are locked, scored and written in one statement
    (a third of the CPU of the engine path); those a drain already did are left alone."""
    from scoring import sqlscore

    statements = []
    monkeypatch.setattr(sqlscore, "rescore", lambda *a, _real=sqlscore.rescore, **k: statements.append(a[2]) or _real(*a, **k))
    flagged = [LeadFactory(job_title="VP Sales") for _ in range(5)]
    for lead in flagged:
        interact(lead, "pricing_page_view")
        flag(lead)
    done_already = LeadFactory(job_title="VP Sales")
    interact(done_already, "pricing_page_view")

    outcome = services.leads_rescore_requested(lead_ids=[lead.pk for lead in [*flagged, done_already]])

    assert statements == [sorted(lead.pk for lead in flagged)] and outcome.scored == 5
    assert [Lead.objects.get(pk=lead.pk).score for lead in flagged] == [30] * 5
    assert Lead.objects.get(pk=done_already.pk).score == 0
    assert not any(rescore_pending(lead) for lead in flagged)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-wise path is PostgreSQL's")
def test_a_rescore_task_waits_for_a_lead_another_rescore_holds_instead_of_leaving_it(model):
    """The set-wise path skips a lead another transaction holds; the task then rescores it the
    single-lead way, which waits, so its score is not left to the sweep."""
    from django.db import transaction

    held, free = LeadFactory(job_title="VP Sales"), LeadFactory(job_title="VP Sales")
    for lead in (held, free):
        interact(lead, "demo_request")
        flag(lead)
    with leads_locked_elsewhere([held.pk], at_most=0.5):  # released while the task waits for it
        outcome = services.leads_rescore_requested(lead_ids=[held.pk, free.pk])
    assert outcome.skipped >= 1  # the set-wise pass could not take it
    assert [Lead.objects.get(pk=lead.pk).score for lead in (held, free)] == [60, 60]
    assert not rescore_pending(held) and not rescore_pending(free)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's (pg_class.reltuples)")
def test_a_run_over_a_large_table_shows_the_estimate_while_it_runs_and_the_count_when_done(
    model, monkeypatch, django_capture_on_commit_callbacks
):
    """Counting a million leads costs up to a second of a marketer's save: a run over every lead of
    a large table starts from PostgreSQL's estimate, and ends with the exact number it did."""
    from scoring import bulk

    monkeypatch.setattr(RescoreRun, "ESTIMATED_FROM", 1)
    for _ in range(3):
        LeadFactory()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leads_lead")  # the estimate: 3 leads
    for _ in range(2):
        LeadFactory()
    seen, real = [], bulk.rescore_chunk
    monkeypatch.setattr(bulk, "rescore_chunk", lambda *a, **k: seen.append(RescoreRun.objects.get().total) or real(*a, **k))

    with django_capture_on_commit_callbacks(execute=True):
        run = services.rescore_run_start(model=model, reason="test")

    run.refresh_from_db()
    assert seen and set(seen) == {3}
    assert (run.status, run.total, run.done, run.percent) == ("done", 5, 5, 100)


@pytest.mark.parametrize("rescore", ["task", "sweep", "backlog drain"])
def test_a_request_due_later_is_left_alone_until_its_time_then_counts_its_interaction(model, rescore):
    """What ingest leaves for an interaction dated ahead (the API allows 5 minutes of skew)."""
    run = {
        "task": lambda lead: services.leads_rescore_requested(lead_ids=[lead.pk]),
        "sweep": lambda lead: services.rescore_sweep(grace_seconds=0),
        "backlog drain": lambda lead: services.rescore_backlog(),
    }[rescore]
    lead = LeadFactory(job_title="VP Sales")
    ahead = timezone.now() + timedelta(minutes=2)
    interact(lead, "demo_request")
    Interaction.objects.filter(lead=lead).update(occurred_at=ahead)
    flag(lead, at=ahead)

    run(lead)
    lead.refresh_from_db()
    assert lead.scored_at is None and rescore_pending(lead)

    # Two minutes later (the interaction and its request moved back instead of the clock forward):
    past = timezone.now() - timedelta(seconds=5)
    Interaction.objects.filter(lead=lead).update(occurred_at=past)
    RescoreRequest.objects.filter(lead=lead).update(requested_at=past)
    run(lead)
    lead.refresh_from_db()
    assert (lead.score, lead.stage, rescore_pending(lead)) == (60, "mql", False)


def test_the_lead_admin_says_when_a_rescore_due_ahead_is_due(model, marketer, client_for):
    lead = LeadFactory()
    flag(lead, at=timezone.now() + timedelta(minutes=3))

    page = client_for(marketer).get(f"/admin/leads/lead/{lead.pk}/change/").content.decode()

    assert "(an interaction its sender dated ahead counts from then)" in page
