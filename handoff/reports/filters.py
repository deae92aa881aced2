"""The filter bar every report shares, read from GET parameters.

`from` / `to`   MQL date range, inclusive, in the site's time zone (default: the last 90 days, today included)
`source`        the lead's source
`campaign`      the lead's campaign (id)
`version`       the scoring-model version the lead qualified under (Handoff.model_version)
`cohort`        funnel only: week (default) or month
`band`          calibration only: score band width (default 10)

A bad value never fails the page: the form shows its error and the report uses that field's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django import forms
from django.utils import timezone

from leads.models import Source

DEFAULT_DAYS = 90
COHORTS = [("week", "Week"), ("month", "Month")]
BANDS = [(5, "5 points"), (10, "10 points"), (20, "20 points"), (25, "25 points")]
DEFAULT_BAND = 10



@dataclass(frozen=True)
class ReportFilters:
    date_from: date
    date_to: date
    source: str = ""
    campaign: int | None = None
    model_version: str = ""
    cohort: str = "week"
    band: int = DEFAULT_BAND

    @property
    def start(self) -> datetime:
        """The first moment of the range (local midnight of `date_from`)."""
        return timezone.make_aware(datetime.combine(self.date_from, time.min))

    @property
    def end(self) -> datetime:
        """The first moment after the range (local midnight after `date_to`): created_at < end."""
        return timezone.make_aware(datetime.combine(self.date_to + timedelta(days=1), time.min))

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def params(self) -> dict:
        values = {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "source": self.source,
            "campaign": self.campaign or "",
            "version": self.model_version,
        }
        return {k: v for k, v in values.items() if v}

    def page_params(self, report: str) -> dict:
        """The shared filters plus the report's own (cohort on the funnel, band on calibration)."""
        extra = {"funnel": {"cohort": self.cohort}, "calibration": {"band": self.band}}.get(report, {})
        return {**self.params(), **extra}

    def querystring(self) -> str:
        """The shared filters as a query string, for links to the other reports."""
        return urlencode(self.params())


def default_range(today: date) -> tuple[date, date]:
    return today - timedelta(days=DEFAULT_DAYS - 1), today


class ReportFilterForm(forms.Form):
    source = forms.ChoiceField(choices=[("", "Any source"), *Source.choices], required=False, label="Source")
    campaign = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Campaign")
    version = forms.ChoiceField(required=False, label="Scoring model")
    cohort = forms.ChoiceField(choices=COHORTS, required=False, label="Cohort by")
    band = forms.TypedChoiceField(
        choices=BANDS, coerce=int, required=False, empty_value=None, label="Band width"
    )

    # Fields that only one report uses; the others do not render them.
    PAGE_FIELDS = {"cohort": "funnel", "band": "calibration"}

    def __init__(self, data, *, campaigns, versions, today: date, report: str = "", **kwargs):
        self.defaults = default_range(today)
        # Unset dates show their defaults in the inputs, so the bar always says what is shown.
        data = data.copy() if data is not None else {}
        defaults = {"from": self.defaults[0].isoformat(), "to": self.defaults[1].isoformat(),
                    "cohort": "week", "band": str(DEFAULT_BAND)}
        for name, value in defaults.items():
            if not data.get(name):
                data[name] = value
        super().__init__(data, **kwargs)
        # "from" is a Python keyword, so the date fields are added here rather than declared.
        date_input = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        self.fields = {
            "from": forms.DateField(label="MQL from", widget=date_input),
            "to": forms.DateField(label="MQL to", widget=date_input),
            **self.fields,
        }
        self.fields["campaign"].choices = [("", "Any campaign"), *((c.pk, c.name) for c in campaigns)]
        self.fields["version"].choices = [("", "Any model version"), *((v, v) for v in versions)]
        for name, page in self.PAGE_FIELDS.items():
            if page != report:
                del self.fields[name]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end and start > end:
            raise forms.ValidationError(
                "“MQL from” must be on or before “MQL to”; showing the default range."
            )
        return cleaned

    def filters(self) -> ReportFilters:
        self.is_valid()
        data = self.cleaned_data
        start, end = self.defaults
        if not self.non_field_errors():
            start, end = data.get("from") or start, data.get("to") or end
        return ReportFilters(
            date_from=start,
            date_to=end,
            source=data.get("source") or "",
            campaign=data.get("campaign") or None,
            model_version=data.get("version") or "",
            cohort=data.get("cohort") or "week",
            band=data.get("band") or DEFAULT_BAND,
        )
