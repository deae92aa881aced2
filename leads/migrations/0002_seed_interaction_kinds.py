from django.db import migrations

KINDS = [
    ("page_view", "Page view"),
    ("pricing_page_view", "Pricing page view"),
    ("content_download", "Content download"),
    ("webinar_attended", "Webinar attended"),
    ("email_click", "Email click"),
    ("demo_request", "Demo request"),
    ("contact_sales", "Contact sales"),
    ("unsubscribe", "Unsubscribe"),
]


def seed(apps, schema_editor):
    InteractionKind = apps.get_model("leads", "InteractionKind")
    for slug, label in KINDS:
        InteractionKind.objects.get_or_create(slug=slug, defaults={"label": label})


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
