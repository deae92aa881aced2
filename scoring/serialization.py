"""A scoring model as JSON: the shape of DESIGN.md "Scoring model as JSON".

Used by ``manage.py import_scoring_model`` / ``export_scoring_model`` and the admin's Import JSON /
Export JSON buttons. ``validate_model_dict`` checks a whole file and returns *every* problem, each
naming the rule and field at fault; ``model_from_dict`` refuses an invalid file before touching the
database and otherwise stores it in one transaction.

```json
{"name": "Default B2B", "mql_threshold": 60, "mql_min_fit": null,
 "fit_rules": [{"label": ..., "field": ..., "operator": ..., "value": ..., "points": 20}],
 "behavior_rules": [{"label": ..., "kind": "pricing_page_view", "points": 10,
                     "property": {...}, "max_points": 30, "half_life_days": 14, "within_days": 90}]}
```
Decisions (see docs/scoring.md):
- ``name`` and ``mql_threshold`` are required; ``mql_min_fit`` defaults to null, ``fit_rules`` and
  ``behavior_rules`` to empty lists. Unknown keys are refused (they are usually typos).
- Every rule needs a label; labels are unique (ignoring case) within ``fit_rules`` and within
  ``behavior_rules``, since the score breakdown names rules by label.
- A fit rule's ``value`` may be left out for ``is_set`` / ``is_not_set``.
- A behaviour rule's optional keys are exported only when set; ``"property": {}`` means no condition.
- Numbers are stored with two decimals, so a number with more decimals is refused rather than
  silently rounded.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from leads.models import InteractionKind

from . import rules
from .models import BehaviorRule, FitRule, ScoringModel

TOP_KEYS = ("name", "mql_threshold", "mql_min_fit", "fit_rules", "behavior_rules")
REQUIRED_TOP_KEYS = ("name", "mql_threshold")
FIT_KEYS = ("label", "field", "operator", "value", "points")
REQUIRED_FIT_KEYS = ("label", "field", "operator", "points")
BEHAVIOR_KEYS = ("label", "kind", "points", "property", "max_points", "half_life_days", "within_days")
REQUIRED_BEHAVIOR_KEYS = ("label", "kind", "points")
OPTIONAL_BEHAVIOR_KEYS = ("property", "max_points", "half_life_days", "within_days")

# Limits of the model fields (DecimalField(max_digits=8, decimal_places=2), CharField(max_length=100)).
MAX_ABS_NUMBER = Decimal("999999.99")
DECIMAL_PLACES = 2
NAME_MAX_LENGTH = ScoringModel._meta.get_field("name").max_length
LABEL_MAX_LENGTH = FitRule._meta.get_field("label").max_length
MAX_WITHIN_DAYS = 2_147_483_647  # PositiveIntegerField on every database


class ModelFileError(Exception):
    """A scoring-model file (or dict) that cannot be imported; ``messages`` lists every problem."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------


def number(x: Any) -> int | float | None:
    """A stored number as JSON would write it: an int when integral, else a float."""
    if x is None:
        return None
    if isinstance(x, Decimal):
        return int(x) if x == x.to_integral_value() else float(x)
    if isinstance(x, float):
        return int(x) if x.is_integer() else x
    return x


def fit_rule_to_dict(rule: FitRule) -> dict:
    return {
        "label": rule.label,
        "field": rule.field,
        "operator": rule.operator,
        "value": rule.value,
        "points": number(rule.points),
    }


def behavior_rule_to_dict(rule: BehaviorRule) -> dict:
    data = {"label": rule.label, "kind": rule.kind.slug, "points": number(rule.points)}
    if rule.property:
        data["property"] = rule.property
    if rule.max_points is not None:
        data["max_points"] = number(rule.max_points)
    if rule.half_life_days is not None:
        data["half_life_days"] = number(rule.half_life_days)
    if rule.within_days is not None:
        data["within_days"] = rule.within_days
    return data


def model_to_dict(model: ScoringModel) -> dict:
    """The model in the design's JSON shape (rules in their display order)."""
    return {
        "name": model.name,
        "mql_threshold": number(model.mql_threshold),
        "mql_min_fit": number(model.mql_min_fit),
        "fit_rules": [fit_rule_to_dict(r) for r in model.fit_rules.all()],
        "behavior_rules": [behavior_rule_to_dict(r) for r in model.behavior_rules.select_related("kind")],
    }


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

def show(x: Any) -> str:
    """A value for messages, JSON-like."""
    if isinstance(x, dict):
        return json.dumps(x, ensure_ascii=False, default=str)
    return rules.show(x)


def _type_name(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true/false"
    if isinstance(x, (int, float)):
        return "a number"
    if isinstance(x, str):
        return "text"
    if isinstance(x, list):
        return "a list"
    if isinstance(x, dict):
        return "an object"
    return type(x).__name__


def _number_problem(x: Any, *, positive: bool = False) -> str | None:
    """Why ``x`` cannot be stored as one of the model's decimal numbers, if so."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return f"must be a number; got {_type_name(x)} {show(x)}"
    if not math.isfinite(x):
        return f"must be a finite number; got {x}"
    try:
        d = Decimal(str(x))
    except InvalidOperation:  # pragma: no cover - str() of a finite number always parses
        return f"must be a number; got {show(x)}"
    if positive and d <= 0:
        return f"must be a positive number; got {number(d)}"
    if abs(d) > MAX_ABS_NUMBER:
        return f"must be between -{MAX_ABS_NUMBER} and {MAX_ABS_NUMBER}; got {x}"
    if d != d.quantize(Decimal(1).scaleb(-DECIMAL_PLACES)):
        return f"may have at most {DECIMAL_PLACES} decimal places; got {x}"
    return None


def _text_problem(x: Any, max_length: int) -> str | None:
    if not isinstance(x, str) or not x.strip():
        return f"must be non-empty text; got {show(x)}"
    if len(x.strip()) > max_length:
        return f"must be at most {max_length} characters; got {len(x.strip())}"
    return None


def _within_days_problem(x: Any) -> str | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x != int(x):
        return f"must be a whole number of days; got {show(x)}"
    if x < 0 or x > MAX_WITHIN_DAYS:
        return f"must be zero or more days; got {number(x)}" if x < 0 else f"is too large; got {number(x)}"
    return None


def _rule_name(section: str, index: int, rule: Any) -> str:
    label = rule.get("label") if isinstance(rule, dict) else None
    if isinstance(label, str) and label.strip():
        return f'{section}[{index}] "{label.strip()}"'
    return f"{section}[{index}]"


def _unknown_keys(obj: dict, allowed: tuple[str, ...]) -> list[str]:
    return [str(k) for k in obj if k not in allowed]


def _validate_fit_rule(index: int, rule: Any) -> list[str]:
    where = _rule_name("fit_rules", index, rule)
    if not isinstance(rule, dict):
        return [f"{where}: each fit rule must be an object; got {_type_name(rule)}"]
    out = []
    for key in _unknown_keys(rule, FIT_KEYS):
        out.append(f'{where}: unknown key "{key}"; a fit rule has ' + ", ".join(FIT_KEYS))
    for key in REQUIRED_FIT_KEYS:
        if key not in rule:
            out.append(f'{where}: field "{key}": missing; every fit rule needs it')
    if "label" in rule and (problem := _text_problem(rule["label"], LABEL_MAX_LENGTH)):
        out.append(f'{where}: field "label": {problem}')
    if "field" in rule and "operator" in rule:
        errors = rules.validate_fit_rule(rule["field"], rule["operator"], rule.get("value"))
    elif "field" in rule:  # the operator is missing (reported above): still check the field
        errors = rules.validate_fit_rule(rule["field"], "is_set", None)
        errors = {"field": errors["field"]} if "field" in errors else {}
    else:
        errors = {}
    for key in ("field", "operator", "value"):
        if key in errors:
            out.append(f'{where}: field "{key}": {errors[key]}')
    if "points" in rule and (problem := _number_problem(rule["points"])):
        out.append(f'{where}: field "points": {problem}')
    return out


def _validate_behavior_rule(index: int, rule: Any, kinds: set[str]) -> list[str]:
    where = _rule_name("behavior_rules", index, rule)
    if not isinstance(rule, dict):
        return [f"{where}: each behaviour rule must be an object; got {_type_name(rule)}"]
    out = []
    for key in _unknown_keys(rule, BEHAVIOR_KEYS):
        out.append(f'{where}: unknown key "{key}"; a behaviour rule has ' + ", ".join(BEHAVIOR_KEYS))
    for key in REQUIRED_BEHAVIOR_KEYS:
        if key not in rule:
            out.append(f'{where}: field "{key}": missing; every behaviour rule needs it')
    if "label" in rule and (problem := _text_problem(rule["label"], LABEL_MAX_LENGTH)):
        out.append(f'{where}: field "label": {problem}')
    if "kind" in rule:
        kind = rule["kind"]
        if not isinstance(kind, str):
            out.append(f'{where}: field "kind": must be an interaction kind slug (text); got {show(kind)}')
        elif kind not in kinds:
            known = ", ".join(sorted(kinds)) or "none defined"
            out.append(f'{where}: field "kind": unknown interaction kind "{kind}"; known kinds: {known}')
    if "points" in rule and (problem := _number_problem(rule["points"])):
        out.append(f'{where}: field "points": {problem}')
    prop = rule.get("property")
    if prop not in (None, {}):
        for part, message in rules.validate_property_condition(prop).items():
            name = "property" if part == "property" else f"property.{part}"
            out.append(f'{where}: field "{name}": {message}')
    for key in ("max_points", "half_life_days"):
        value = rule.get(key)
        if value is not None and (problem := _number_problem(value, positive=True)):
            if key == "max_points" and "positive" in problem:
                problem += " (max_points caps the rule's total in either direction, so it is never negative)"
            out.append(f'{where}: field "{key}": {problem}')
    if rule.get("within_days") is not None and (problem := _within_days_problem(rule["within_days"])):
        out.append(f'{where}: field "within_days": {problem}')
    return out


def _duplicate_labels(section: str, items: list) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for index, rule in enumerate(items):
        label = rule.get("label") if isinstance(rule, dict) else None
        if not isinstance(label, str) or not label.strip():
            continue
        key = label.strip().lower()
        if key in seen:
            out.append(
                f'{section}[{index}] "{label.strip()}": field "label": '
                f"the same label as {section}[{seen[key]}]; "
                "labels must differ because the score breakdown names rules by label"
            )
        else:
            seen[key] = index
    return out


def validate_model_dict(data: Any) -> list[str]:
    """Every problem with a scoring-model dict, each naming the rule and field at fault; [] if valid.

    Reads the interaction kinds from the database; writes nothing. Does not check whether a model
    with the same name exists (``model_from_dict`` does, since that depends on ``replace``).
    """
    if not isinstance(data, dict):
        return [f"a scoring model must be a JSON object with {', '.join(TOP_KEYS)}; got {_type_name(data)}"]
    out = []
    for key in _unknown_keys(data, TOP_KEYS):
        out.append(f'unknown top-level key "{key}"; a scoring model has ' + ", ".join(TOP_KEYS))
    for key in REQUIRED_TOP_KEYS:
        if key not in data:
            out.append(f'field "{key}": missing; a scoring model needs it')
    if "name" in data and (problem := _text_problem(data["name"], NAME_MAX_LENGTH)):
        out.append(f'field "name": {problem}')
    if "mql_threshold" in data and (problem := _number_problem(data["mql_threshold"])):
        out.append(f'field "mql_threshold": {problem}')
    if data.get("mql_min_fit") is not None and (problem := _number_problem(data["mql_min_fit"])):
        out.append(f'field "mql_min_fit": {problem} (or null for no minimum)')

    fit_rules = data.get("fit_rules", [])
    if fit_rules is None:
        fit_rules = []
    if not isinstance(fit_rules, list):
        out.append(f'field "fit_rules": must be a list of rules; got {_type_name(fit_rules)}')
    else:
        for index, rule in enumerate(fit_rules):
            out += _validate_fit_rule(index, rule)
        out += _duplicate_labels("fit_rules", fit_rules)

    behavior_rules = data.get("behavior_rules", [])
    if behavior_rules is None:
        behavior_rules = []
    if not isinstance(behavior_rules, list):
        out.append(f'field "behavior_rules": must be a list of rules; got {_type_name(behavior_rules)}')
    else:
        kinds = set(InteractionKind.objects.values_list("slug", flat=True)) if behavior_rules else set()
        for index, rule in enumerate(behavior_rules):
            out += _validate_behavior_rule(index, rule, kinds)
        out += _duplicate_labels("behavior_rules", behavior_rules)
    return out


# --------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_model_json(text: str | bytes) -> Any:
    """The JSON of a scoring-model file; ModelFileError (with line and column) if it is not JSON."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ModelFileError(["the file is not UTF-8 text; save it as UTF-8 JSON"]) from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ModelFileError([f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]) from None
    except ValueError as exc:
        raise ModelFileError([f"not valid JSON: {exc}"]) from None


def model_to_json(model: ScoringModel) -> str:
    """The export file's text: the model's dict as JSON, indented by 2, UTF-8 friendly."""
    return json.dumps(model_to_dict(model), indent=2, ensure_ascii=False) + "\n"


def _decimal(x: Any) -> Decimal | None:
    return None if x is None else Decimal(str(x))


def _name_problem(name: str, replace: bool) -> str | None:
    existing = ScoringModel.objects.filter(name=name).first()
    if existing is None:
        return None
    if existing.status == ScoringModel.Status.ACTIVE:
        return (
            f'a model named "{name}" already exists and is the active model; '
            "import under another name (or duplicate it as a draft) and publish that"
        )
    if not replace:
        return (
            f'a model named "{name}" already exists; '
            "rename the file's model or replace its rules (--replace)"
        )
    return None


def _full_clean(obj, where: str) -> list[str]:
    """The model's own validation, as a safety net behind validate_model_dict."""
    try:
        obj.full_clean(exclude=["model"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        return [
            f'{where}: field "{field}": {msg}' for field, msgs in exc.message_dict.items() for msg in msgs
        ]
    return []


def model_from_dict(
    data: Any, *, activate: bool = False, by=None, replace: bool = False
) -> ScoringModel:
    """Store a scoring-model dict as a draft (or replace a non-active model's rules); maybe publish it.

    Raises ModelFileError listing every problem, with the database unchanged, when the dict is
    invalid or its name is taken (by the active model, or by any model without ``replace``).
    With ``activate`` the new model is published (``services.model_publish``) in the same
    transaction, which starts a rescore of every lead once it commits.
    """
    messages = validate_model_dict(data)
    if messages:
        raise ModelFileError(messages)
    name = data["name"].strip()
    if problem := _name_problem(name, replace):
        raise ModelFileError([problem])

    kinds = {k.slug: k for k in InteractionKind.objects.all()}
    with transaction.atomic():
        model = ScoringModel.objects.select_for_update().filter(name=name).first()
        if model is None:
            model = ScoringModel(name=name)
        elif model.status == ScoringModel.Status.ACTIVE:  # became active since the check above
            raise ModelFileError([_name_problem(name, replace)])
        else:
            model.fit_rules.all().delete()
            model.behavior_rules.all().delete()
        model.status = ScoringModel.Status.DRAFT
        model.mql_threshold = _decimal(data["mql_threshold"])
        model.mql_min_fit = _decimal(data.get("mql_min_fit"))
        model.save()

        fit_rules, behavior_rules, problems = [], [], []
        for index, item in enumerate(data.get("fit_rules") or []):
            rule = FitRule(
                model=model,
                position=index,
                label=item["label"].strip(),
                field=item["field"],
                operator=item["operator"],
                value=item.get("value"),
                points=_decimal(item["points"]),
            )
            problems += _full_clean(rule, _rule_name("fit_rules", index, item))
            fit_rules.append(rule)
        for index, item in enumerate(data.get("behavior_rules") or []):
            rule = BehaviorRule(
                model=model,
                position=index,
                label=item["label"].strip(),
                kind=kinds[item["kind"]],
                points=_decimal(item["points"]),
                property=item.get("property") or None,
                max_points=_decimal(item.get("max_points")),
                half_life_days=_decimal(item.get("half_life_days")),
                within_days=None if item.get("within_days") is None else int(item["within_days"]),
            )
            problems += _full_clean(rule, _rule_name("behavior_rules", index, item))
            behavior_rules.append(rule)
        if problems:
            raise ModelFileError(problems)  # rolls the transaction back
        FitRule.objects.bulk_create(fit_rules)
        BehaviorRule.objects.bulk_create(behavior_rules)

        if activate:
            from . import services

            services.model_publish(model=model, by=by)
            model.refresh_from_db()
    return model


def model_duplicate(model: ScoringModel, *, name: str) -> ScoringModel:
    """A draft copy of ``model`` and its rules, named ``name`` — made through the JSON shape, so a
    copy is exactly what an export and re-import would give."""
    return model_from_dict({**model_to_dict(model), "name": name})
