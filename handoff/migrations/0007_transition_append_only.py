"""The audit trail is append-only in the database too, not only in the model.

PostgreSQL: a row trigger refuses UPDATE and DELETE on handoff_transition. The one way to delete audit
rows is a maintenance transaction that says so with `SET LOCAL accord.audit_purge = 'on'` (only
`seed_demo --force`, through handoff.models.purge_transitions, and the benchmark's restore do); it
never allows UPDATE. TRUNCATE (the test runner's flush, the benchmark's reset) fires no row trigger.

SQLite: a trigger refuses UPDATE only. Django flushes a SQLite test database with DELETE FROM, which a
DELETE trigger would refuse, and SQLite has no session setting to let a maintenance delete through.
Deletes are still refused above the database: Transition.delete(), the queryset's delete() and
PROTECT on lead and handoff (no cascade). PostgreSQL is the production database.

Transition.lead and .handoff become PROTECT: deleting a lead or handoff with history raises
ProtectedError (the admin says "Cannot delete ...") instead of cascading into the audit trail.
"""

import django.db.models.deletion
from django.db import migrations, models

POSTGRESQL_FORWARDS = """
CREATE FUNCTION handoff_transition_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('accord.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'handoff_transition is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER handoff_transition_append_only
    BEFORE UPDATE OR DELETE ON handoff_transition
    FOR EACH ROW EXECUTE FUNCTION handoff_transition_append_only();
"""
POSTGRESQL_BACKWARDS = """
DROP TRIGGER IF EXISTS handoff_transition_append_only ON handoff_transition;
DROP FUNCTION IF EXISTS handoff_transition_append_only();
"""
SQLITE_FORWARDS = """
CREATE TRIGGER handoff_transition_no_update BEFORE UPDATE ON handoff_transition
BEGIN
    SELECT RAISE(ABORT, 'handoff_transition is append-only: UPDATE refused');
END
"""
SQLITE_BACKWARDS = "DROP TRIGGER IF EXISTS handoff_transition_no_update"


def _run(schema_editor, statements: dict[str, str]) -> None:
    sql = statements.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql, params=None)  # no parameters: the % in RAISE is plpgsql's


def create_triggers(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRESQL_FORWARDS, "sqlite": SQLITE_FORWARDS})


def drop_triggers(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRESQL_BACKWARDS, "sqlite": SQLITE_BACKWARDS})


class Migration(migrations.Migration):

    dependencies = [
        ('handoff', '0006_pool_and_previous_assignee'),
        ('leads', '0006_rescore_flag_to_requests'),
    ]

    operations = [
        migrations.AlterField(
            model_name='transition',
            name='handoff',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='transitions', to='handoff.handoff'),
        ),
        migrations.AlterField(
            model_name='transition',
            name='lead',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='transitions', to='leads.lead'),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
