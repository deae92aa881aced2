"""Forms of the scoring admin: rule inlines that marketers can type into, and the JSON upload."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from . import rules
from leads.models import InteractionKind

from .models import BehaviorRule, FitRule, ScoringModel

# --------------------------------------------------------------------------
# Choices grouped so that a field and an operator that fit together are easy to pick
# --------------------------------------------------------------------------

_ANY_TYPE_OPERATORS = [
    op for op in rules.OPERATORS if all(op in ops for ops in rules.OPERATORS_BY_TYPE.values())
]
_TEXT_ONLY = [op for op in rules.OPERATORS_BY_TYPE[rules.TEXT] if op not in _ANY_TYPE_OPERATORS]
_NUMBER_ONLY = [op for op in rules.OPERATORS_BY_TYPE[rules.NUMBER] if op not in _ANY_TYPE_OPERATORS]


def _op_label(op: str) -> str:
    return op.replace("_", " ")


OPERATOR_CHOICES = [
    ("", "---------"),
    ("Any field", [(op, _op_label(op)) for op in _ANY_TYPE_OPERATORS]),
    ("Text fields only", [(op, _op_label(op)) for op in _TEXT_ONLY]),
    ("Number fields only", [(op, _op_label(op)) for op in _NUMBER_ONLY]),
]
FIELD_CHOICES = [
    ("", "---------"),
    ("Text", [(f, f.replace("_", " ")) for f, t in rules.LEAD_FIELDS.items() if t == rules.TEXT]),
    ("Number", [(f, f.replace("_", " ")) for f, t in rules.LEAD_FIELDS.items() if t == rules.NUMBER]),
]
PROPERTY_OPERATOR_CHOICES = [("", "---------")] + [(op, _op_label(op)) for op in rules.OPERATORS]


# --------------------------------------------------------------------------
# A value typed as JSON, or as plain text
# --------------------------------------------------------------------------


class _RawInput(str):
    """What the user typed, shown back verbatim when the form is redisplayed."""


def parse_value(text: Any) -> Any:
    """Text typed into a value box: JSON if it parses (200, ["vp", "head"], "vp"), else the plain
    text itself (vp). Blank means no value."""
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def format_value(value: Any) -> str:
    """The inverse of parse_value, as short as possible: a string shows plainly unless it would be
    read back as something else (e.g. the text "200" shows as "200" with quotes)."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value and value == value.strip() and parse_value(value) == value and not value.startswith('"'):
            return value
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


class JSONValueField(forms.Field):
    """A rule value: JSON (a number, a list, a quoted string) with plain text accepted as a string."""

    widget = forms.TextInput

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, _RawInput):
            value = str(value)
        return parse_value(value)

    def bound_data(self, data, initial):
        if self.disabled:
            return initial
        return None if data is None else _RawInput(data)

    def prepare_value(self, value):
        if isinstance(value, _RawInput):
            return str(value)
        return format_value(value)

    def has_changed(self, initial, data):
        if self.disabled:
            return False
        # initial is the stored value (already Python); data is what the box holds.
        return initial != self.to_python(data)

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.setdefault("size", 28)
        attrs.setdefault("spellcheck", "false")
        return attrs


# --------------------------------------------------------------------------
# A behaviour rule's property condition: key, operator, value in three boxes
# --------------------------------------------------------------------------


class PropertyConditionWidget(forms.MultiWidget):
    def __init__(self, attrs=None):
        widgets = {
            "key": forms.TextInput(attrs={"size": 12, "placeholder": "key", "aria-label": "Property key"}),
            "operator": forms.Select(
                choices=PROPERTY_OPERATOR_CHOICES, attrs={"aria-label": "Property operator"}
            ),
            "value": forms.TextInput(
                attrs={"size": 14, "placeholder": "value", "aria-label": "Property value"}
            ),
        }
        super().__init__(widgets, attrs)

    def decompress(self, value):
        if isinstance(value, str):  # raw JSON from an old form, e.g. an initial value
            try:
                value = json.loads(value)
            except ValueError:
                return [value, "", ""]
        if not isinstance(value, dict) or not value:
            return ["", "", ""]
        return [value.get("key", ""), value.get("operator", ""), format_value(value.get("value"))]


class PropertyConditionField(forms.MultiValueField):
    """{"key": k, "operator": op, "value": v} from three inputs; all blank means no condition.

    The condition is validated by BehaviorRule.clean (rules.validate_property_condition), which
    names the rule at fault."""

    widget = PropertyConditionWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        fields = (
            forms.CharField(required=False),
            forms.ChoiceField(required=False, choices=PROPERTY_OPERATOR_CHOICES),
            JSONValueField(required=False),
        )
        super().__init__(fields, require_all_fields=False, **kwargs)

    def compress(self, data_list):
        if not data_list:
            return None
        key, operator, value = (list(data_list) + [None, None, None])[:3]
        key = (key or "").strip()
        if not key and not operator and value is None:
            return None
        return {"key": key, "operator": operator or "", "value": value}

    def has_changed(self, initial, data):
        if self.disabled:
            return False
        if not isinstance(data, (list, tuple)):
            data = self.widget.decompress(data)
        try:
            new = self.compress([f.clean(d) for f, d in zip(self.fields, data, strict=False)])
        except ValidationError:
            return True
        return (initial or None) != new


# --------------------------------------------------------------------------
# Inline forms and formsets
# --------------------------------------------------------------------------


class FitRuleForm(forms.ModelForm):
    field = forms.ChoiceField(choices=FIELD_CHOICES, help_text="The lead field to test.")
    operator = forms.ChoiceField(
        choices=OPERATOR_CHOICES, help_text="Text-only and number-only operators are grouped."
    )
    value = JSONValueField(
        help_text='Plain text (vp), a number (200), a list (["vp", "head"]), [low, high] for between; '
        "empty for is set / is not set."
    )

    class Meta:
        model = FitRule
        fields = ("label", "field", "operator", "value", "points")


class BehaviorRuleForm(forms.ModelForm):
    # Declared here so the admin does not wrap it in add/edit/delete links for interaction kinds.
    kind = forms.ModelChoiceField(
        queryset=InteractionKind.objects.order_by("label"),
        help_text="The kind of interaction this rule counts "
        "(kinds are listed under Leads › Interaction kinds).",
    )
    property = PropertyConditionField(
        label="Property condition",
        help_text="Optional: key, operator and value the interaction's properties must match, "
        "e.g. asset_type equals whitepaper.",
    )

    class Meta:
        model = BehaviorRule
        fields = ("label", "kind", "points", "property", "max_points", "half_life_days", "within_days")
        labels = {"half_life_days": "Half-life (days)", "within_days": "Within (days)"}


class ScoringModelForm(forms.ModelForm):
    class Meta:
        model = ScoringModel
        fields = ("name", "mql_threshold", "mql_min_fit")
        labels = {"mql_threshold": "MQL threshold", "mql_min_fit": "MQL minimum fit"}


class UniqueLabelFormSet(BaseInlineFormSet):
    """Rule labels must differ within a model: the score breakdown names rules by label."""

    def clean(self):
        super().clean()
        seen: dict[str, str] = {}
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or self._should_delete_form(form):
                continue
            label = (form.cleaned_data.get("label") or "").strip()
            if not label:
                continue
            if label.lower() in seen:
                form.add_error(
                    "label",
                    f'{label}: another rule is labelled "{seen[label.lower()]}"; labels must differ because '
                    "the score breakdown names rules by label",
                )
            else:
                seen[label.lower()] = label


# --------------------------------------------------------------------------
# Admin pages
# --------------------------------------------------------------------------


class ImportModelForm(forms.Form):
    file = forms.FileField(
        label="JSON file",
        help_text="A scoring model in the shape Export JSON writes. It is imported as a draft.",
    )
    replace = forms.BooleanField(
        required=False,
        label="Replace a draft with the same name",
        help_text="If a draft or archived model has this name, replace its threshold and rules. "
        "The active model is never replaced.",
    )

    MAX_BYTES = 2 * 1024 * 1024

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise ValidationError(
                f"The file is too large ({upload.size} bytes); a scoring model is a few KB."
            )
        return upload


class DuplicateModelForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name of the copy")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if ScoringModel.objects.filter(name=name).exists():
            raise ValidationError(f'A model named "{name}" already exists.')
        return name
