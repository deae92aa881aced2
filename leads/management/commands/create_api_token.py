"""manage.py create_api_token NAME — a bearer token for a marketing tool, shown once."""

from django.core.management.base import BaseCommand, CommandError

from leads.models import ApiToken
from leads.services import api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token for a marketing tool. Only its hash is stored: the raw token is printed "
        "once, as the last word of the output."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help='What the token is for, e.g. "zapier". Must be unique.')

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name:
            raise CommandError("The token name must not be empty.")
        max_length = ApiToken._meta.get_field("name").max_length
        if len(name) > max_length:
            raise CommandError(f"The token name must be at most {max_length} characters.")
        # Checked up front for a clear message; the unique constraint still guards against a race.
        if ApiToken.objects.filter(name=name).exists():
            raise CommandError(
                f'An API token named "{name}" already exists. Choose another name, or revoke the old '
                "token in the admin and create one with a new name."
            )
        token, raw = api_token_create(name=name)
        # The raw token is the last word so scripts can take it with `| awk '{print $NF}'`.
        self.stdout.write(f'Created API token "{token.name}". Store it now, it is not shown again: {raw}')
