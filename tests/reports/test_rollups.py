"""The report rollups (handoff/reports/rollups.py, migration handoff 0009) always agree with the raw rows.

PostgreSQL only: database triggers keep report_lead_day (leads per local day, source, campaign) and
report_rule_day (rule contributions per local day of the MQL, model version, label and decided /
accepted / qualified) up to date; SQLite reports count the raw rows. Every test writes through the
usual paths (ORM, bulk inserts, the state machine, raw SQL, TRUNCATE) and compares what the reports
read from the rollups with a count over the raw rows.
"""

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from handoff import services
from handoff.models import Handoff, HandoffContribution, RejectionReason
from handoff.reports import queries, rollups
from handoff.reports.filters import ReportFilters
from leads.models import Campaign, Lead
from tests.leads.factories import CampaignFactory, LeadFactory
from tests.reports import history
from tests.reports.history import RANGE

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the rollups are PostgreSQL only"),
]

WIDE = ReportFilters(date_from=date(2024, 1, 1), date_to=date(2026, 12, 31))
STORY = ReportFilters(date_from=date(2025, 2, 24), date_to=date(2025, 3, 20))


def copy_lead_sql(email_sql: str, where: str, suffix: str = "") -> str:
    """INSERT INTO leads_lead ... SELECT: copies of existing leads, with the email given as SQL."""
    columns = [f.column for f in Lead._meta.concrete_fields if not f.primary_key]
    values = [email_sql if c == "email" else c for c in columns]
    return (f"INSERT INTO leads_lead ({', '.join(columns)}) SELECT {', '.join(values)} FROM leads_lead "
            f"WHERE {where} {suffix}")


def raw_leads(f: ReportFilters, unit: str = "week") -> dict:
    rows = queries.leads(f).annotate(cohort=queries.trunc(unit)).values("cohort", "source")
    rows = rows.annotate(leads=queries.Count("*"))
    return {(queries._key(r["cohort"]), r["source"]): r["leads"] for r in rows}


def rolled_leads(f: ReportFilters, unit: str = "week") -> dict:
    return {(r["cohort"], r["source"]): r["leads"] for r in rollups.lead_counts(f, unit)}


def raw_rules(f: ReportFilters) -> dict:
    return {r["label"]: r for r in queries._rules_joined(f)}


def rolled_rules(f: ReportFilters) -> dict:
    return {r["label"]: r for r in rollups.rule_counts(f)}


def assert_rules_agree(f: ReportFilters) -> None:
    raw, rolled = raw_rules(f), rolled_rules(f)
    assert raw.keys() == rolled.keys()
    for label, row in raw.items():
        got = rolled[label]
        assert {k: got[k] for k in ("mqls", "decided", "accepted", "sqls")} == {
            k: row[k] for k in ("mqls", "decided", "accepted", "sqls")
        }, label
        assert got["avg_points"] == pytest.approx(row["avg_points"], abs=1e-9), label


def table_agrees_with_a_recount() -> None:
    """Summed over the writers' slots, report_lead_day and report_rule_day hold exactly the raw counts."""
    with connection.cursor() as cursor:
        cursor.execute("""
            WITH raw AS (SELECT (created_at AT TIME ZONE z.tz)::date AS day, source,
                                coalesce(campaign_id, 0) AS c, count(*) AS n
                         FROM leads_lead CROSS JOIN report_rollup_zone z GROUP BY 1, 2, 3),
                 rolled AS (SELECT day, source, campaign_id AS c, sum(leads) AS n FROM report_lead_day
                            GROUP BY 1, 2, 3 HAVING sum(leads) <> 0)
            SELECT count(*) FROM raw FULL JOIN rolled USING (day, source, c)
            WHERE raw.n IS DISTINCT FROM rolled.n
        """)
        assert cursor.fetchone()[0] == 0
        cursor.execute("""
            WITH raw AS (SELECT (h.created_at AT TIME ZONE z.tz)::date AS day, h.model_version AS v, c.label,
                                h.first_action_at IS NOT NULL AS d, h.accepted_at IS NOT NULL AS a,
                                h.qualified_at IS NOT NULL AS q, count(*) AS n
                         FROM handoff_handoffcontribution c JOIN handoff_handoff h ON h.id = c.handoff_id
                         CROSS JOIN report_rollup_zone z GROUP BY 1, 2, 3, 4, 5, 6),
                 rolled AS (SELECT day, model_version AS v, label, decided AS d, accepted AS a,
                                   qualified AS q, sum(mqls) AS n
                            FROM report_rule_day GROUP BY 1, 2, 3, 4, 5, 6
                            HAVING sum(mqls) <> 0)
            SELECT count(*) FROM raw FULL JOIN rolled USING (day, v, label, d, a, q)
            WHERE raw.n IS DISTINCT FROM rolled.n
        """)
        assert cursor.fetchone()[0] == 0


def test_the_story_reads_the_same_from_the_rollups_as_from_the_raw_rows(story):
    assert rolled_leads(STORY) == raw_leads(STORY)
    assert rolled_leads(STORY, "month") == raw_leads(STORY, "month")
    assert sum(rolled_leads(STORY).values()) == 16  # tests/reports/test_funnel.py
    assert_rules_agree(STORY)
    assert rolled_rules(STORY)["Demo request"]["mqls"] == 7
    table_agrees_with_a_recount()


def test_filters_the_rollups_have_columns_for(story):
    search = story["campaigns"]["search"]
    for f in (
        ReportFilters(**{**STORY.__dict__, "source": "paid"}),
        ReportFilters(**{**STORY.__dict__, "campaign": search.pk}),
        ReportFilters(**{**STORY.__dict__, "source": "event", "campaign": search.pk}),
    ):
        assert rolled_leads(f) == raw_leads(f)
    assert rolled_leads(ReportFilters(**{**STORY.__dict__, "campaign": search.pk})) == {
        (date(2025, 3, 3), "paid"): 2, (date(2025, 3, 10), "paid"): 1, (date(2025, 3, 17), "paid"): 1}
    assert_rules_agree(ReportFilters(**{**STORY.__dict__, "model_version": history.V2}))
    # The rule rollup has no source or campaign: the report joins the raw rows instead.
    assert rollups.rule_counts(ReportFilters(**{**STORY.__dict__, "source": "paid"})) is None
    assert rollups.rule_counts(ReportFilters(**{**STORY.__dict__, "campaign": search.pk})) is None


def test_every_kind_of_lead_write_keeps_the_lead_rollup_exact(story):
    day = datetime(2025, 3, 5, 10, tzinfo=UTC)
    extra = CampaignFactory(name="Extra")
    Lead.objects.bulk_create(
        [Lead(email=f"bulk{i}@x.example", source="content", created_at=day) for i in range(5)]
    )
    moved = LeadFactory(source="inbound", created_at=day)
    assert rolled_leads(STORY) == raw_leads(STORY)
    # Source, campaign and creation time edited (one row, then many).
    Lead.objects.filter(pk=moved.pk).update(source="partner", campaign=extra)
    Lead.objects.filter(email__startswith="bulk").update(created_at=day + timedelta(days=7))
    moved.created_at = day - timedelta(days=30)
    moved.save()
    assert rolled_leads(STORY) == raw_leads(STORY)
    assert rolled_leads(WIDE) == raw_leads(WIDE)
    # A deleted campaign leaves its leads without one (SET_NULL); deleted leads leave the count.
    Campaign.objects.filter(pk=extra.pk).delete()
    Lead.objects.filter(email__startswith="bulk").exclude(email="bulk0@x.example").delete()
    # Raw SQL, several statements in one transaction, an upsert that inserts nothing.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE leads_lead SET source = 'event' WHERE email = 'bulk0@x.example'")
        cursor.execute("UPDATE leads_lead SET score = score + 1")  # not a rollup column: no trigger
        cursor.execute(copy_lead_sql("email", "true", "ON CONFLICT DO NOTHING"))  # every email exists
        cursor.execute(copy_lead_sql("'copy-' || email", "source = 'paid'"))
    assert rolled_leads(WIDE) == raw_leads(WIDE)
    table_agrees_with_a_recount()


def test_every_kind_of_handoff_write_keeps_the_rule_rollup_exact(story, sdr):
    h4, h10, h11 = story["H4"], story["H10"], story["H11"]
    # The state machine: acting on waiting MQLs moves their contributions to decided / accepted.
    services.handoff_accept(handoff_id=h11.pk, actor=h11.assignee, now=history.NOW)
    services.handoff_reject(handoff_id=h10.pk, actor=h10.assignee,
                            reason=RejectionReason.objects.get(code="no_budget"), now=history.NOW)
    assert_rules_agree(STORY)
    # Direct edits: MQL date (across days and out of the range), model version, points, label.
    Handoff.objects.filter(pk=h4.pk).update(created_at=h4.created_at + timedelta(days=2), model_version="v9")
    Handoff.objects.filter(pk=story["H1"].pk).update(created_at=datetime(2024, 1, 1, tzinfo=UTC))
    HandoffContribution.objects.filter(handoff=story["H2"], label="Demo request").update(points=41.5)
    contributions = HandoffContribution.objects
    contributions.filter(handoff=story["H3"], label="Pricing page").update(label="Pricing (new)")
    assert_rules_agree(STORY)
    assert_rules_agree(ReportFilters(**{**STORY.__dict__, "model_version": "v9"}))
    assert_rules_agree(WIDE)
    # A promotion writes the handoff, then its contributions; deleting goes the other way round.
    lead = LeadFactory(created_at=history.NOW - timedelta(hours=2))
    promotion = services.lead_promote_to_mql(lead=lead, score=80, breakdown=[history.RULES["Demo"]],
                                             model_version=history.V2, now=history.NOW)
    assert_rules_agree(STORY)
    HandoffContribution.objects.filter(handoff_id=promotion.handoff_id).delete()
    HandoffContribution.objects.filter(handoff=story["H5"]).delete()
    assert_rules_agree(STORY)
    table_agrees_with_a_recount()


def test_a_handoff_deleted_before_its_contributions_is_not_counted_twice(story):
    h9 = story["H9"]
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET LOCAL accord.audit_purge = 'on'")
        cursor.execute("DELETE FROM handoff_transition WHERE handoff_id = %s", [h9.pk])
        cursor.execute("DELETE FROM handoff_handoff WHERE id = %s", [h9.pk])
        assert_rules_agree(STORY)
        cursor.execute("DELETE FROM handoff_handoffcontribution WHERE handoff_id = %s", [h9.pk])
        assert_rules_agree(STORY)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    table_agrees_with_a_recount()


def test_truncate_empties_the_rollups(story):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred FK check pending: TRUNCATE refuses
        cursor.execute("TRUNCATE handoff_handoffcontribution")
        assert rolled_rules(WIDE) == {}
        cursor.execute("TRUNCATE leads_lead CASCADE")
        assert rolled_leads(WIDE) == {}
        cursor.execute("SELECT count(*) FROM report_lead_day UNION ALL SELECT count(*) FROM report_rule_day")
        assert [n for (n,) in cursor.fetchall()] == [0, 0]


def test_the_triggers_fire_under_replication_role_replica(db):
    """The benchmark COPYs its leads with session_replication_role = replica (no FK triggers)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        when = datetime(2025, 3, 4, tzinfo=UTC)
        Lead.objects.bulk_create([Lead(email=f"copy{i}@x.example", created_at=when) for i in range(3)])
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert rolled_leads(WIDE) == {(date(2025, 3, 3), "inbound"): 3}


def test_compaction_folds_the_writers_rows_into_one_per_key(story, monkeypatch):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM report_lead_day WHERE slot <> 0")
        assert cursor.fetchone()[0] > 0  # this test's writes, under its own backend's pid
    before_leads = rolled_leads(STORY)
    monkeypatch.setattr(rollups, "COMPACT_AFTER", 0)
    with CaptureQueriesContext(connection) as ctx:
        assert rolled_leads(STORY) == before_leads
    assert [q["sql"] for q in ctx.captured_queries][-1] == "SELECT report_rollup_compact()"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM report_lead_day WHERE slot <> 0 "
                       "UNION ALL SELECT count(*) FROM report_rule_day WHERE slot <> 0")
        assert [n for (n,) in cursor.fetchall()] == [0, 0]
    assert rolled_leads(STORY) == before_leads == raw_leads(STORY)
    assert_rules_agree(STORY)
    table_agrees_with_a_recount()


def test_a_new_time_zone_setting_rebuilds_the_rollups_by_local_day(story, settings, mgr):
    # 23:30 UTC on Sunday 2 March is 18:30 in New York (still Sunday) but Monday 00:30 in Berlin.
    LeadFactory(source="referral", created_at=datetime(2025, 3, 2, 23, 30, tzinfo=UTC))
    for zone in ("America/New_York", "Europe/Berlin", "UTC"):
        settings.TIME_ZONE = zone
        assert rolled_leads(STORY) == raw_leads(STORY), zone
        assert_rules_agree(STORY)
        with connection.cursor() as cursor:
            cursor.execute("SELECT tz FROM report_rollup_zone")
            assert cursor.fetchone()[0] == zone
        table_agrees_with_a_recount()
    settings.TIME_ZONE = "Europe/Berlin"
    page = mgr.get("/reports/funnel/", RANGE)
    assert page.status_code == 200
    assert rolled_leads(STORY)[(date(2025, 3, 3), "referral")] == 1


def test_a_time_zone_activated_for_one_request_counts_the_raw_rows(story):
    from django.utils import timezone

    with timezone.override("Asia/Kolkata"):
        assert rollups.lead_counts(STORY, "week") is None
        assert rollups.rule_counts(STORY) is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # like every transactional test here
def test_writers_do_not_wait_for_each_other():
    """Two transactions creating leads of the same day, source and campaign both go through at once:
    each adds to its own row of the rollup (keyed by its backend's pid)."""
    LeadFactory(email="template@x.example", source="paid", created_at=datetime(2025, 3, 4, 10, tzinfo=UTC))
    settings = connection.settings_dict
    dsn = dict(dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"] or "127.0.0.1",
               port=settings["PORT"] or 5432, password=settings["PASSWORD"] or None)
    insert = copy_lead_sql("%s", "email = 'template@x.example'")
    with psycopg.connect(**dsn) as first, psycopg.connect(**dsn) as second:
        first.execute(insert, ["one@x.example"])  # its transaction stays open, its rollup row locked
        second.execute("SET lock_timeout = '2s'")
        second.execute(insert, ["two@x.example"])  # would time out if it waited for the first
        second.commit()
        first.commit()
    assert rolled_leads(WIDE) == {(date(2025, 3, 3), "paid"): 3}
    table_agrees_with_a_recount()
