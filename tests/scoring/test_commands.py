"""manage.py import_scoring_model and export_scoring_model."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scoring.models import FitRule, ScoringModel
from tests.scoring.factories import EXAMPLE_MODEL, ScoringModelFactory, build_example_model, example_dict

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def write(tmp_path, data, name="model.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_import_creates_a_draft(tmp_path):
    output = run("import_scoring_model", write(tmp_path, example_dict()))

    model = ScoringModel.objects.get(name="Default B2B")
    assert model.status == ScoringModel.Status.DRAFT
    assert output == 'Imported "Default B2B" as a draft (3 fit rules, 4 behaviour rules).\n'


def test_import_with_activate_publishes(tmp_path, django_capture_on_commit_callbacks):
    old = ScoringModelFactory(name="Old", status=ScoringModel.Status.ACTIVE)

    with django_capture_on_commit_callbacks(execute=False):
        output = run("import_scoring_model", write(tmp_path, example_dict()), "--activate")

    model = ScoringModel.objects.get(name="Default B2B")
    old.refresh_from_db()
    assert (model.status, model.version, old.status) == ("active", 1, "archived")
    assert "published" in output and "v1" in output


def test_import_refuses_an_invalid_file_listing_every_problem(tmp_path):
    data = example_dict()
    data["fit_rules"][1].update(operator="between", value=[500, 10])
    data["behavior_rules"][0]["kind"] = "pricing_view"

    with pytest.raises(CommandError) as exc:
        run("import_scoring_model", write(tmp_path, data))

    message = str(exc.value)
    assert "was not imported (2 problems); nothing changed" in message
    assert '  - fit_rules[1] "Mid-market+": field "value": "between" needs [low, high] with low ≤ high' in message
    assert '  - behavior_rules[0] "Pricing page": field "kind": unknown interaction kind "pricing_view"' in message
    assert not ScoringModel.objects.exists()
    assert not FitRule.objects.exists()


def test_import_refuses_invalid_json(tmp_path):
    with pytest.raises(CommandError, match=r"not valid JSON: Expecting .* \(line 1, column \d+\)"):
        run("import_scoring_model", write(tmp_path, '{"name": "x", '))
    assert not ScoringModel.objects.exists()


def test_import_refuses_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_scoring_model", str(tmp_path / "nope.json"))


def test_import_refuses_an_existing_name_unless_replace(tmp_path):
    build_example_model()
    path = write(tmp_path, example_dict(mql_threshold=75))

    with pytest.raises(CommandError, match='a model named "Default B2B" already exists'):
        run("import_scoring_model", path)
    assert ScoringModel.objects.get().mql_threshold == 60

    run("import_scoring_model", path, "--replace")
    assert ScoringModel.objects.get().mql_threshold == 75


def test_export_prints_the_active_model_as_indented_json():
    build_example_model(status=ScoringModel.Status.ACTIVE)
    ScoringModelFactory(name="Draft")

    output = run("export_scoring_model")

    assert json.loads(output) == EXAMPLE_MODEL
    assert output.startswith('{\n  "name": "Default B2B",\n  "mql_threshold": 60,')


def test_export_by_name():
    build_example_model(name="Other")

    assert json.loads(run("export_scoring_model", "Other"))["name"] == "Other"


def test_export_errors_name_the_problem():
    with pytest.raises(CommandError, match="No scoring model is active"):
        run("export_scoring_model")
    ScoringModelFactory(name="Only")
    with pytest.raises(CommandError, match='No scoring model named "Nope". Models: "Only".'):
        run("export_scoring_model", "Nope")


def test_export_then_import_round_trips(tmp_path):
    build_example_model(status=ScoringModel.Status.ACTIVE)
    exported = json.loads(run("export_scoring_model"))

    run("import_scoring_model", write(tmp_path, {**exported, "name": "Copy"}))

    assert json.loads(run("export_scoring_model", "Copy")) == {**EXAMPLE_MODEL, "name": "Copy"}
