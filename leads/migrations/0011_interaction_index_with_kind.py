"""The interactions' lead index gains the kind: (lead, kind, occurred_at) instead of (lead,
occurred_at). A set-wise rescore sums behaviour rules without property conditions from lead, kind
and time alone, so PostgreSQL reads them from the index without a heap row per interaction (1,000
leads' 10,500 interactions: 26 ms -> 13 ms at 10M interactions). Same number of indexes for every
insert to write; a lead's timeline sorts its own few rows.

On a large installation, build the new index first with CREATE INDEX CONCURRENTLY under this name
(this migration's CREATE INDEX blocks inserts while it runs: 4 s at 10M rows here)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("leads", "0010_drop_interaction_kind_index")]

    operations = [
        migrations.AddIndex(
            model_name="interaction",
            index=models.Index(fields=["lead", "kind", "occurred_at"], name="interaction_lead_kind_time_idx"),
        ),
        migrations.RemoveIndex(model_name="interaction", name="interaction_lead_time_idx"),
    ]
