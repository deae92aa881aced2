"""Drop the (kind, occurred_at) index on interactions. It was made for rescoring one behaviour rule
across all leads; every rescoring path now reads interactions by lead (the lead/time index), and no
report reads them by kind. Each stored interaction wrote it: a 1,000-item ingest batch's INSERT took
26-30 ms with it and 20-21 ms without it at 10M interactions."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("leads", "0009_drop_external_id_pattern_index")]

    operations = [migrations.RemoveIndex(model_name="interaction", name="interaction_kind_time_idx")]
