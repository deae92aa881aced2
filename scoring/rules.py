"""Rule vocabulary for lead scoring: fields, operators, value shapes, matching.

Pure Python (stdlib only) so it can be used by forms, the API, the engine and
tests alike. ``matches`` is the single comparison function used for both fit
rules (on lead fields) and behaviour-rule property conditions (on interaction
properties); keep the two paths identical by never comparing anywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

TEXT = "text"
NUMBER = "number"

# Lead fields usable in fit rules: name -> type. ``email_domain`` is derived
# (the part after the last "@" of ``email``, lowercased).
LEAD_FIELDS: dict[str, str] = {
    "email": TEXT,
    "email_domain": TEXT,
    "first_name": TEXT,
    "last_name": TEXT,
    "job_title": TEXT,
    "seniority": TEXT,
    "company": TEXT,
    "industry": TEXT,
    "country": TEXT,
    "source": TEXT,
    "company_size": NUMBER,
    "annual_revenue": NUMBER,
}

OPERATORS: tuple[str, ...] = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "contains",
    "contains_any",
    "starts_with",
    "ends_with",
    "ends_with_any",
    "gte",
    "lte",
    "between",
    "is_set",
    "is_not_set",
)

OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    TEXT: (
        "equals",
        "not_equals",
        "in",
        "not_in",
        "contains",
        "contains_any",
        "starts_with",
        "ends_with",
        "ends_with_any",
        "is_set",
        "is_not_set",
    ),
    NUMBER: (
        "equals",
        "not_equals",
        "in",
        "not_in",
        "gte",
        "lte",
        "between",
        "is_set",
        "is_not_set",
    ),
}

# Operator groups by the shape of the value they take.
PRESENCE_OPERATORS = frozenset({"is_set", "is_not_set"})
SCALAR_OPERATORS = frozenset({"equals", "not_equals", "contains", "starts_with", "ends_with", "gte", "lte"})
LIST_OPERATORS = frozenset({"in", "not_in", "contains_any", "ends_with_any"})
RANGE_OPERATORS = frozenset({"between"})
# Operators that only make sense for one kind of value, whatever the field.
TEXT_ONLY_OPERATORS = frozenset({"contains", "contains_any", "starts_with", "ends_with", "ends_with_any"})
NUMBER_ONLY_OPERATORS = frozenset({"gte", "lte", "between"})


# --------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------


def is_number(x: Any) -> bool:
    """A finite int/float/Decimal. bool is excluded although it is an int."""
    if isinstance(x, bool) or not isinstance(x, (int, float, Decimal)):
        return False
    return math.isfinite(float(x))


def is_missing(x: Any) -> bool:
    """None or a blank string: only ``is_not_set`` matches such a value."""
    return x is None or (isinstance(x, str) and not x.strip())


def _as_text(x: Any) -> str:
    # bool -> "true"/"false" so JSON booleans in properties compare sensibly.
    # lower(), not casefold(), so a SQL path using lower() agrees exactly.
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x).strip().lower()


def _as_number(x: Any) -> float | None:
    """Numeric view of an actual value, or None if it has none.

    Strings are parsed because interaction properties often carry numbers as
    text ("42"). Non-finite values are treated as not numeric.
    """
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float, Decimal)):
        f = float(x)
    elif isinstance(x, str):
        if "_" in x:  # Python's float() accepts "1_000"; nothing else does
            return None
        try:
            f = float(x.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _equal(actual: Any, expected: Any) -> bool:
    # The expected value's type decides: numbers numerically, else text.
    if is_number(expected):
        a = _as_number(actual)
        return a is not None and a == float(expected)
    return _as_text(actual) == _as_text(expected)


# --------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------


def matches(operator: str, actual: Any, value: Any) -> bool:
    """Does ``actual`` satisfy ``operator value``?

    A missing actual (None / blank string) matches only ``is_not_set`` - so
    ``not_equals`` and ``not_in`` do not match it either. An actual value that
    cannot be compared (e.g. text where a number is expected) never matches.
    Raises ValueError for an unknown operator: stored rules are validated, so
    this means corrupt data and must not be silently scored as zero.
    """
    if operator not in OPERATORS:
        raise ValueError(f'unknown operator "{operator}"')
    if is_missing(actual):
        return operator == "is_not_set"
    if operator in PRESENCE_OPERATORS:
        return operator == "is_set"

    if operator == "equals":
        return _equal(actual, value)
    if operator == "not_equals":
        return _comparable(actual, value) and not _equal(actual, value)
    if operator == "in":
        return any(_equal(actual, v) for v in value)
    if operator == "not_in":
        return all(_comparable(actual, v) for v in value) and not any(_equal(actual, v) for v in value)

    if operator in NUMBER_ONLY_OPERATORS:
        a = _as_number(actual)
        if a is None:
            return False
        if operator == "gte":
            return a >= float(value)
        if operator == "lte":
            return a <= float(value)
        low, high = value
        return float(low) <= a <= float(high)

    text = _as_text(actual)
    if operator == "contains":
        return _as_text(value) in text
    if operator == "contains_any":
        return any(_as_text(v) in text for v in value)
    if operator == "starts_with":
        return text.startswith(_as_text(value))
    if operator == "ends_with":
        return text.endswith(_as_text(value))
    # ends_with_any
    return any(text.endswith(_as_text(v)) for v in value)


def _comparable(actual: Any, expected: Any) -> bool:
    # A negative test ("not 5") must not match a value that is not a number
    # at all: that would make garbage data look like a positive signal.
    return not is_number(expected) or _as_number(actual) is not None


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def show(value: Any) -> str:
    """Render a rule value for messages, JSON-like: [500, 10], "vp", null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def _scalar_error(field_type: str | None, operator: str, v: Any) -> str | None:
    """Why ``v`` is not an acceptable single value for this operator, if so.

    ``field_type`` None means "infer from the value" (property conditions).
    """
    wants_number = field_type == NUMBER or operator in NUMBER_ONLY_OPERATORS
    wants_text = field_type == TEXT or operator in TEXT_ONLY_OPERATORS
    if wants_number:
        if not is_number(v):
            return f"a number, got {show(v)}"
    elif wants_text:
        if not isinstance(v, str) or not v.strip():
            return f"non-empty text, got {show(v)}"
    elif not (is_number(v) or (isinstance(v, str) and v.strip())):
        return f"non-empty text or a number, got {show(v)}"
    return None


def _condition_errors(field_type: str | None, operator: Any, value: Any) -> dict[str, str]:
    """Errors keyed by the part at fault: "operator" or "value"."""
    if not isinstance(operator, str) or operator not in OPERATORS:
        return {"operator": f"unknown operator {show(operator)}; expected one of " + ", ".join(OPERATORS)}
    if field_type is not None and operator not in OPERATORS_BY_TYPE[field_type]:
        return {"operator": f'operator "{operator}" does not suit {field_type} field'}

    if operator in PRESENCE_OPERATORS:
        if value is not None:
            return {"value": f'"{operator}" takes no value; got {show(value)}'}
        return {}

    if operator in RANGE_OPERATORS:
        ok = (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(is_number(v) for v in value)
            and float(value[0]) <= float(value[1])
        )
        if not ok:
            return {"value": f'"between" needs [low, high] with low ≤ high; got {show(value)}'}
        return {}

    if operator in LIST_OPERATORS:
        if not isinstance(value, (list, tuple)) or not value:
            return {"value": f'"{operator}" needs a non-empty list; got {show(value)}'}
        for item in value:
            problem = _scalar_error(field_type, operator, item)
            if problem:
                return {"value": f'"{operator}" needs a list where each item is {problem}'}
        return {}

    # SCALAR_OPERATORS
    if isinstance(value, (list, tuple, dict)):
        return {"value": f'"{operator}" needs a single value, not a list; got {show(value)}'}
    problem = _scalar_error(field_type, operator, value)
    if problem:
        return {"value": f'"{operator}" needs {problem}'}
    return {}


def validate_condition(field_type: str | None, operator: Any, value: Any) -> list[str]:
    """Messages for an operator/value pair; [] when valid.

    ``field_type`` is "text", "number", or None to infer the type from the
    value (behaviour-rule property conditions).
    """
    if field_type is not None and field_type not in OPERATORS_BY_TYPE:
        raise ValueError(f"unknown field type {field_type!r}")
    return list(_condition_errors(field_type, operator, value).values())


def validate_fit_rule(field: Any, operator: Any, value: Any) -> dict[str, str]:
    """Errors keyed by "field", "operator" or "value"; {} when valid."""
    if not isinstance(field, str) or field not in LEAD_FIELDS:
        errors = {"field": f"unknown field {show(field)}; expected one of " + ", ".join(LEAD_FIELDS)}
        # Still report operator/value problems that do not depend on the field.
        errors.update(_condition_errors(None, operator, value))
        return errors
    field_type = LEAD_FIELDS[field]
    errors = _condition_errors(field_type, operator, value)
    if "operator" in errors and operator in OPERATORS:
        errors["operator"] = (
            f'operator "{operator}" does not suit {field_type} field "{field}"; '
            f"use one of " + ", ".join(OPERATORS_BY_TYPE[field_type])
        )
    return errors


PROPERTY_CONDITION_KEYS = frozenset({"key", "operator", "value"})


def validate_property_condition(cond: Any) -> dict[str, str]:
    """Errors for a behaviour rule's property condition, keyed by "key",
    "operator", "value" (or "property" when the condition itself is not an
    object or has unexpected keys); {} when valid. The value's type decides
    how it compares, so text-only operators need text and gte/lte/between
    need numbers.
    """
    if not isinstance(cond, Mapping):
        return {
            "property": f'a property condition must be an object with "key", '
            f'"operator" and "value"; got {show(cond)}'
        }
    errors: dict[str, str] = {}
    extra = sorted(str(k) for k in cond if k not in PROPERTY_CONDITION_KEYS)
    if extra:
        errors["property"] = "unexpected keys: " + ", ".join(extra)
    key = cond.get("key")
    if not isinstance(key, str) or not key.strip():
        errors["key"] = f"the property key must be non-empty text; got {show(key)}"
    errors.update(_condition_errors(None, cond.get("operator"), cond.get("value")))
    return errors
