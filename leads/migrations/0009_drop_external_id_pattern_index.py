"""PostgreSQL: drop the varchar_pattern_ops copy of the external_id index that Django adds for a
unique CharField. It serves only `LIKE 'prefix%'` queries, which nothing runs (the admin's search
is `icontains`, which no b-tree serves), yet every stored interaction wrote it: at 10M interactions
it was 318 MB of index pages competing for memory with the ones ingest and rescoring read."""

from django.db import migrations

INDEX = "leads_interaction_external_id_f155b336_like"


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON leads_interaction (external_id varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("leads", "0008_lead_engagement_total")]

    operations = [migrations.RunPython(drop, restore)]
