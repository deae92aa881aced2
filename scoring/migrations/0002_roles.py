from django.db import migrations

from leads.roles import sync_roles


class Migration(migrations.Migration):
    """Give the roles the scoring permissions now that the models exist."""

    dependencies = [("scoring", "0001_initial"), ("handoff", "0002_seed_reasons_and_roles")]
    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
