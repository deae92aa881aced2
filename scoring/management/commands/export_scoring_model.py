"""manage.py export_scoring_model [NAME] — print a scoring model as JSON (default: the active one)."""

from django.core.management.base import BaseCommand, CommandError

from scoring.models import ScoringModel
from scoring.serialization import model_to_json


class Command(BaseCommand):
    help = (
        "Print a scoring model as JSON (indent 2), in the shape import_scoring_model reads. "
        "Without NAME, the active model."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="The model's name (default: the active model).")

    def handle(self, *args, name=None, **options):
        if name is None:
            model = ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).first()
            if model is None:
                raise CommandError("No scoring model is active; name the model to export.")
        else:
            model = ScoringModel.objects.filter(name=name).first()
            if model is None:
                names = ", ".join(f'"{n}"' for n in ScoringModel.objects.values_list("name", flat=True))
                raise CommandError(f'No scoring model named "{name}". Models: {names or "none"}.')
        self.stdout.write(model_to_json(model), ending="")
