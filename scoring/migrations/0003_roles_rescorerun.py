from django.db import migrations

from leads.roles import sync_roles


class Migration(migrations.Migration):
    """Marketers and Managers may watch bulk rescore runs."""

    dependencies = [("scoring", "0002_roles")]
    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
