from django.db import migrations

from leads.roles import sync_roles

REASONS = [
    # code, label, disqualifies
    ("no_budget", "No budget", False),
    ("not_decision_maker", "Not a decision maker", False),
    ("bad_timing", "Bad timing", False),
    ("no_need", "No need", False),
    ("bad_data", "Bad data", True),
    ("competitor", "Competitor", True),
    ("student_job_seeker", "Student / job seeker", True),
    ("duplicate", "Duplicate", True),
]


def seed_reasons(apps, schema_editor):
    RejectionReason = apps.get_model("handoff", "RejectionReason")
    for code, label, disqualifies in REASONS:
        RejectionReason.objects.get_or_create(
            code=code, defaults={"label": label, "disqualifies": disqualifies}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("handoff", "0001_initial"),
        ("leads", "0002_seed_interaction_kinds"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [
        migrations.RunPython(seed_reasons, migrations.RunPython.noop),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
