"""manage.py import_scoring_model FILE [--activate] [--replace] — load a scoring model from JSON."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from scoring.serialization import ModelFileError, model_from_dict, parse_model_json


class Command(BaseCommand):
    help = (
        "Import a scoring model from a JSON file (the shape export_scoring_model writes) as a draft. "
        "An invalid file is refused with every problem listed, and nothing changes."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help='Path of the JSON file, or "-" to read standard input.')
        parser.add_argument(
            "--activate",
            action="store_true",
            help="Publish the imported model: it becomes the active one and every lead is rescored.",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="If a draft or archived model has the same name, replace its threshold and rules "
            "(it becomes a draft). The active model is never replaced.",
        )

    def handle(self, *args, file, activate, replace, **options):
        if file == "-":
            text = sys.stdin.read()
        else:
            path = Path(file)
            try:
                text = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"Cannot read {file}: {exc.strerror or exc}") from None
        try:
            model = model_from_dict(parse_model_json(text), activate=activate, replace=replace)
        except ModelFileError as exc:
            lines = "\n".join(f"  - {message}" for message in exc.messages)
            problems = "problem" if len(exc.messages) == 1 else "problems"
            raise CommandError(
                f"{file} was not imported ({len(exc.messages)} {problems}); nothing changed:\n{lines}"
            ) from None

        counts = f"{model.fit_rules.count()} fit rules, {model.behavior_rules.count()} behaviour rules"
        if activate:
            self.stdout.write(
                f'Imported and published "{model.name}" v{model.version} ({counts}); '
                "every lead is being rescored."
            )
        else:
            self.stdout.write(f'Imported "{model.name}" as a draft ({counts}).')
