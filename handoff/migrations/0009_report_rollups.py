"""Reports at 1,000,000 leads (docs/reports.md, "Performance"). PostgreSQL only: SQLite has neither
INCLUDE indexes nor transition tables, and its data sets are small; there the reports count the raw
rows as before.

1. Covering indexes, read by index-only scans (the handoff row is ~1.7 KB because of the breakdown
   JSON; the index entry ~130 bytes):
   - handoff_report_idx (created_at) INCLUDE every column a report reads or filters on;
   - handoff_report_id_idx (id) INCLUDE what the funnel and velocity read, and
     transition_opportunity_idx / transition_won_idx (handoff_id) INCLUDE (at, id), partial on the
     target stage: the funnel's and velocity's joins to the transitions to opportunity and to won
     become merge joins of three index-only scans in handoff order (no hash tables).
   They are not in the models' Meta: PostgreSQL-only, and nothing but these queries uses them.

2. Two rollups, kept by triggers, so that no report counts a million rows:
   - report_lead_day: leads created per local day × source × campaign (the funnel's "Leads");
   - report_rule_day: rule contributions per local day of the MQL × model version × label × whether
     the MQL was decided / accepted / qualified, with the sum of their points (rule effectiveness).
   "Local day" is in the time zone held by report_rollup_zone (settings.TIME_ZONE when built; the
   reports rebuild both rollups when the setting changes).

   Writers never wait on one another: every trigger adds its change (+ or −) to rows keyed by its own
   backend's pid (`slot`), which no other open transaction can hold; slot 0 holds the compacted
   counts. report_rollup_compact() folds the other slots into slot 0 (the reports call it when they
   read more than a few thousand uncompacted rows); report_rollup_rebuild(tz) recounts everything.

   Triggers on leads_lead: after INSERT / DELETE (per statement, with the transition table), after
   UPDATE of created_at, source or campaign_id when one of them changed (per row), after TRUNCATE.
   On handoff_handoffcontribution and handoff_handoff likewise, the rule rollup counting each
   contribution whose handoff exists (whichever of the two is written or deleted first). All are
   ENABLE ALWAYS: they also fire under session_replication_role = replica (the benchmark's COPY).
"""

from django.conf import settings
from django.db import migrations

TABLES = """
CREATE TABLE report_rollup_zone (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    tz text NOT NULL
);
CREATE TABLE report_lead_day (
    day date NOT NULL,
    source varchar(20) NOT NULL,
    campaign_id bigint NOT NULL,   -- 0: no campaign
    slot integer NOT NULL,         -- 0: compacted; otherwise the pid of the backend that wrote it
    leads bigint NOT NULL,
    PRIMARY KEY (day, source, campaign_id, slot)
);
CREATE TABLE report_rule_day (
    day date NOT NULL,
    model_version varchar(100) NOT NULL,
    label varchar(100) NOT NULL,
    decided boolean NOT NULL,
    accepted boolean NOT NULL,
    qualified boolean NOT NULL,
    slot integer NOT NULL,
    mqls bigint NOT NULL,
    points double precision NOT NULL,
    PRIMARY KEY (day, model_version, label, decided, accepted, qualified, slot)
);
"""

FUNCTIONS = r"""
-- Leads inserted or deleted by one statement (transition table "changed").
CREATE FUNCTION report_lead_day_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_lead_day AS r (day, source, campaign_id, slot, leads)
    SELECT (c.created_at AT TIME ZONE z.tz)::date, c.source, coalesce(c.campaign_id, 0), pg_backend_pid(),
           CASE TG_OP WHEN 'DELETE' THEN -count(*) ELSE count(*) END
    FROM changed c CROSS JOIN report_rollup_zone z
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (day, source, campaign_id, slot) DO UPDATE SET leads = r.leads + excluded.leads;
    RETURN NULL;
END;
$$;

-- One lead whose creation time, source or campaign changed.
CREATE FUNCTION report_lead_day_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_lead_day AS r (day, source, campaign_id, slot, leads)
    SELECT k.day, k.source, k.campaign_id, pg_backend_pid(), sum(k.delta)
    FROM report_rollup_zone z CROSS JOIN LATERAL (VALUES
        ((OLD.created_at AT TIME ZONE z.tz)::date, OLD.source, coalesce(OLD.campaign_id, 0), -1),
        ((NEW.created_at AT TIME ZONE z.tz)::date, NEW.source, coalesce(NEW.campaign_id, 0), 1)
    ) AS k (day, source, campaign_id, delta)
    GROUP BY 1, 2, 3
    HAVING sum(k.delta) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (day, source, campaign_id, slot) DO UPDATE SET leads = r.leads + excluded.leads;
    RETURN NULL;
END;
$$;

CREATE FUNCTION report_lead_day_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM report_lead_day;
    RETURN NULL;
END;
$$;

-- Contributions inserted or deleted by one statement, counted if their handoff exists.
CREATE FUNCTION report_rule_day_contributions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign integer := CASE TG_OP WHEN 'DELETE' THEN -1 ELSE 1 END;
BEGIN
    INSERT INTO report_rule_day AS r
        (day, model_version, label, decided, accepted, qualified, slot, mqls, points)
    SELECT (h.created_at AT TIME ZONE z.tz)::date, h.model_version, c.label,
           h.first_action_at IS NOT NULL, h.accepted_at IS NOT NULL, h.qualified_at IS NOT NULL,
           pg_backend_pid(), sign * count(*), sign * sum(c.points)
    FROM changed c JOIN handoff_handoff h ON h.id = c.handoff_id CROSS JOIN report_rollup_zone z
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (day, model_version, label, decided, accepted, qualified, slot)
    DO UPDATE SET mqls = r.mqls + excluded.mqls, points = r.points + excluded.points;
    RETURN NULL;
END;
$$;

-- One contribution whose handoff, label or points changed.
CREATE FUNCTION report_rule_day_contribution_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_rule_day AS r
        (day, model_version, label, decided, accepted, qualified, slot, mqls, points)
    SELECT (h.created_at AT TIME ZONE z.tz)::date, h.model_version, k.label,
           h.first_action_at IS NOT NULL, h.accepted_at IS NOT NULL, h.qualified_at IS NOT NULL,
           pg_backend_pid(), sum(k.delta), sum(k.delta * k.points)
    FROM (VALUES (OLD.handoff_id, OLD.label, OLD.points, -1), (NEW.handoff_id, NEW.label, NEW.points, 1))
             AS k (handoff_id, label, points, delta)
        JOIN handoff_handoff h ON h.id = k.handoff_id CROSS JOIN report_rollup_zone z
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(k.delta) <> 0 OR sum(k.delta * k.points) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (day, model_version, label, decided, accepted, qualified, slot)
    DO UPDATE SET mqls = r.mqls + excluded.mqls, points = r.points + excluded.points;
    RETURN NULL;
END;
$$;

-- Handoffs inserted or deleted by one statement: their contributions that exist.
CREATE FUNCTION report_rule_day_handoffs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign integer := CASE TG_OP WHEN 'DELETE' THEN -1 ELSE 1 END;
BEGIN
    INSERT INTO report_rule_day AS r
        (day, model_version, label, decided, accepted, qualified, slot, mqls, points)
    SELECT (h.created_at AT TIME ZONE z.tz)::date, h.model_version, c.label,
           h.first_action_at IS NOT NULL, h.accepted_at IS NOT NULL, h.qualified_at IS NOT NULL,
           pg_backend_pid(), sign * count(*), sign * sum(c.points)
    FROM changed h JOIN handoff_handoffcontribution c ON c.handoff_id = h.id CROSS JOIN report_rollup_zone z
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (day, model_version, label, decided, accepted, qualified, slot)
    DO UPDATE SET mqls = r.mqls + excluded.mqls, points = r.points + excluded.points;
    RETURN NULL;
END;
$$;

-- One handoff whose MQL date, model version or decided / accepted / qualified state changed.
CREATE FUNCTION report_rule_day_handoff_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_rule_day AS r
        (day, model_version, label, decided, accepted, qualified, slot, mqls, points)
    SELECT k.day, k.model_version, c.label, k.decided, k.accepted, k.qualified,
           pg_backend_pid(), sum(k.delta), sum(k.delta * c.points)
    FROM handoff_handoffcontribution c CROSS JOIN report_rollup_zone z CROSS JOIN LATERAL (VALUES
        ((OLD.created_at AT TIME ZONE z.tz)::date, OLD.model_version, OLD.first_action_at IS NOT NULL,
         OLD.accepted_at IS NOT NULL, OLD.qualified_at IS NOT NULL, -1),
        ((NEW.created_at AT TIME ZONE z.tz)::date, NEW.model_version, NEW.first_action_at IS NOT NULL,
         NEW.accepted_at IS NOT NULL, NEW.qualified_at IS NOT NULL, 1)
    ) AS k (day, model_version, decided, accepted, qualified, delta)
    WHERE c.handoff_id = NEW.id
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(k.delta) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (day, model_version, label, decided, accepted, qualified, slot)
    DO UPDATE SET mqls = r.mqls + excluded.mqls, points = r.points + excluded.points;
    RETURN NULL;
END;
$$;

CREATE FUNCTION report_rule_day_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM report_rule_day;
    RETURN NULL;
END;
$$;

-- Fold every writer's slot into slot 0. One compactor at a time (returns false when another is
-- running); rows a writer still holds (its transaction is open) are left for next time.
CREATE FUNCTION report_rollup_compact() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('accord.report_rollups')) THEN
        RETURN false;
    END IF;
    WITH moved AS (
        DELETE FROM report_lead_day WHERE ctid IN (
            SELECT ctid FROM report_lead_day WHERE slot <> 0 FOR UPDATE SKIP LOCKED)
        RETURNING day, source, campaign_id, leads
    )
    INSERT INTO report_lead_day AS r (day, source, campaign_id, slot, leads)
    SELECT day, source, campaign_id, 0, sum(leads) FROM moved GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, source, campaign_id, slot) DO UPDATE SET leads = r.leads + excluded.leads;
    DELETE FROM report_lead_day WHERE slot = 0 AND leads = 0;

    WITH moved AS (
        DELETE FROM report_rule_day WHERE ctid IN (
            SELECT ctid FROM report_rule_day WHERE slot <> 0 FOR UPDATE SKIP LOCKED)
        RETURNING day, model_version, label, decided, accepted, qualified, mqls, points
    )
    INSERT INTO report_rule_day AS r
        (day, model_version, label, decided, accepted, qualified, slot, mqls, points)
    SELECT day, model_version, label, decided, accepted, qualified, 0, sum(mqls), sum(points)
    FROM moved GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (day, model_version, label, decided, accepted, qualified, slot)
    DO UPDATE SET mqls = r.mqls + excluded.mqls, points = r.points + excluded.points;
    -- No contribution left: whatever points remain are rounding residue of + and − sums.
    DELETE FROM report_rule_day WHERE slot = 0 AND mqls = 0;
    RETURN true;
END;
$$;

-- Recount both rollups from the raw rows, by local day in time zone `zone`.
CREATE FUNCTION report_rollup_rebuild(zone text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM now() AT TIME ZONE zone;  -- an unknown zone fails here, before anything changes
    PERFORM pg_advisory_xact_lock(hashtext('accord.report_rollups'));
    -- Writers wait (their triggers write these tables) and then see the new zone.
    LOCK TABLE report_lead_day, report_rule_day, report_rollup_zone IN EXCLUSIVE MODE;
    INSERT INTO report_rollup_zone (id, tz) VALUES (1, zone) ON CONFLICT (id) DO UPDATE SET tz = excluded.tz;
    DELETE FROM report_lead_day;
    DELETE FROM report_rule_day;
    INSERT INTO report_lead_day (day, source, campaign_id, slot, leads)
    SELECT (created_at AT TIME ZONE zone)::date, source, coalesce(campaign_id, 0), 0, count(*)
    FROM leads_lead GROUP BY 1, 2, 3;
    INSERT INTO report_rule_day (day, model_version, label, decided, accepted, qualified, slot, mqls, points)
    SELECT (h.created_at AT TIME ZONE zone)::date, h.model_version, c.label,
           h.first_action_at IS NOT NULL, h.accepted_at IS NOT NULL, h.qualified_at IS NOT NULL,
           0, count(*), sum(c.points)
    FROM handoff_handoffcontribution c JOIN handoff_handoff h ON h.id = c.handoff_id
    GROUP BY 1, 2, 3, 4, 5, 6;
END;
$$;
"""

TRIGGERS = """
CREATE TRIGGER report_lead_day_insert AFTER INSERT ON leads_lead
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION report_lead_day_rows();
CREATE TRIGGER report_lead_day_delete AFTER DELETE ON leads_lead
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION report_lead_day_rows();
CREATE TRIGGER report_lead_day_update AFTER UPDATE OF created_at, source, campaign_id ON leads_lead
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.source IS DISTINCT FROM NEW.source
                       OR OLD.campaign_id IS DISTINCT FROM NEW.campaign_id)
    EXECUTE FUNCTION report_lead_day_move();
CREATE TRIGGER report_lead_day_truncate AFTER TRUNCATE ON leads_lead
    FOR EACH STATEMENT EXECUTE FUNCTION report_lead_day_clear();

CREATE TRIGGER report_rule_day_insert AFTER INSERT ON handoff_handoffcontribution
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION report_rule_day_contributions();
CREATE TRIGGER report_rule_day_delete AFTER DELETE ON handoff_handoffcontribution
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION report_rule_day_contributions();
CREATE TRIGGER report_rule_day_update AFTER UPDATE OF handoff_id, label, points ON handoff_handoffcontribution
    FOR EACH ROW WHEN (OLD.handoff_id IS DISTINCT FROM NEW.handoff_id OR OLD.label IS DISTINCT FROM NEW.label
                       OR OLD.points IS DISTINCT FROM NEW.points)
    EXECUTE FUNCTION report_rule_day_contribution_move();
CREATE TRIGGER report_rule_day_truncate AFTER TRUNCATE ON handoff_handoffcontribution
    FOR EACH STATEMENT EXECUTE FUNCTION report_rule_day_clear();

CREATE TRIGGER report_rule_day_handoff_insert AFTER INSERT ON handoff_handoff
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION report_rule_day_handoffs();
CREATE TRIGGER report_rule_day_handoff_delete AFTER DELETE ON handoff_handoff
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION report_rule_day_handoffs();
CREATE TRIGGER report_rule_day_handoff_update
    AFTER UPDATE OF created_at, model_version, first_action_at, accepted_at, qualified_at ON handoff_handoff
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at
                       OR OLD.model_version IS DISTINCT FROM NEW.model_version
                       OR (OLD.first_action_at IS NULL) <> (NEW.first_action_at IS NULL)
                       OR (OLD.accepted_at IS NULL) <> (NEW.accepted_at IS NULL)
                       OR (OLD.qualified_at IS NULL) <> (NEW.qualified_at IS NULL))
    EXECUTE FUNCTION report_rule_day_handoff_move();
CREATE TRIGGER report_rule_day_handoff_truncate AFTER TRUNCATE ON handoff_handoff
    FOR EACH STATEMENT EXECUTE FUNCTION report_rule_day_clear();
"""
TRIGGER_NAMES = {
    "leads_lead": ["report_lead_day_insert", "report_lead_day_delete", "report_lead_day_update",
                   "report_lead_day_truncate"],
    "handoff_handoffcontribution": ["report_rule_day_insert", "report_rule_day_delete",
                                    "report_rule_day_update", "report_rule_day_truncate"],
    "handoff_handoff": ["report_rule_day_handoff_insert", "report_rule_day_handoff_delete",
                        "report_rule_day_handoff_update", "report_rule_day_handoff_truncate"],
}

INDEXES = """
CREATE INDEX handoff_report_idx ON handoff_handoff (created_at) INCLUDE (
    id, source, campaign_id, model_version, assignee_id, rejection_reason_id, score_at_mql, outcome,
    first_action_at, sla_due_at, accepted_at, qualified_at, closed_at);
CREATE INDEX handoff_report_id_idx ON handoff_handoff (id) INCLUDE (
    created_at, source, campaign_id, model_version, accepted_at, qualified_at, closed_at, outcome);
CREATE INDEX transition_opportunity_idx ON handoff_transition (handoff_id) INCLUDE (at, id)
    WHERE to_stage = 'opportunity';
CREATE INDEX transition_won_idx ON handoff_transition (handoff_id) INCLUDE (at, id) WHERE to_stage = 'won';
"""

BACKWARDS = """
DROP INDEX IF EXISTS transition_won_idx;
DROP INDEX IF EXISTS transition_opportunity_idx;
DROP INDEX IF EXISTS handoff_report_id_idx;
DROP INDEX IF EXISTS handoff_report_idx;
""" + "".join(
    f"DROP TRIGGER IF EXISTS {name} ON {table};\n" for table, names in TRIGGER_NAMES.items() for name in names
) + """
DROP FUNCTION IF EXISTS report_rollup_rebuild(text);
DROP FUNCTION IF EXISTS report_rollup_compact();
DROP FUNCTION IF EXISTS report_rule_day_clear();
DROP FUNCTION IF EXISTS report_rule_day_handoff_move();
DROP FUNCTION IF EXISTS report_rule_day_handoffs();
DROP FUNCTION IF EXISTS report_rule_day_contribution_move();
DROP FUNCTION IF EXISTS report_rule_day_contributions();
DROP FUNCTION IF EXISTS report_lead_day_clear();
DROP FUNCTION IF EXISTS report_lead_day_move();
DROP FUNCTION IF EXISTS report_lead_day_rows();
DROP TABLE IF EXISTS report_rule_day;
DROP TABLE IF EXISTS report_lead_day;
DROP TABLE IF EXISTS report_rollup_zone;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # No parameters anywhere: the % in the SQL above is PL/pgSQL's, not a placeholder.
        cursor.execute(INDEXES)
        cursor.execute(TABLES)
        cursor.execute(FUNCTIONS)
        cursor.execute(TRIGGERS)
        for table, names in TRIGGER_NAMES.items():
            for name in names:
                cursor.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}")
        cursor.execute("SELECT report_rollup_rebuild(%s)", [settings.TIME_ZONE])
        cursor.execute("ANALYZE handoff_handoff")
        cursor.execute("ANALYZE handoff_transition")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARDS)


class Migration(migrations.Migration):

    dependencies = [
        ("handoff", "0008_board_queues"),
        ("leads", "0006_rescore_flag_to_requests"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
