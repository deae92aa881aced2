"""CSV import of leads (django-import-export). Scores and stages are never imported: they belong to
the scoring engine and the state machine."""

from decimal import InvalidOperation

from import_export import fields, resources, widgets

from .models import Campaign, Lead

IMPORT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "job_title",
    "seniority",
    "company",
    "industry",
    "company_size",
    "annual_revenue",
    "country",
    "source",
    "campaign",
)


class StrictForeignKeyWidget(widgets.ForeignKeyWidget):
    """A campaign named in the file must exist; an empty cell means no campaign."""

    def clean(self, value, row=None, **kwargs):
        if value in (None, ""):
            return None
        try:
            return super().clean(str(value).strip(), row, **kwargs)
        except Campaign.DoesNotExist:
            raise ValueError(f'unknown campaign "{value}"') from None


class FriendlyNumberWidget:
    """Turn the widget's low-level conversion error into a message a marketer understands."""

    kind = "number"

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except (InvalidOperation, ValueError, TypeError):
            raise ValueError(f'"{value}" is not a {self.kind}') from None


class WholeNumberWidget(FriendlyNumberWidget, widgets.IntegerWidget):
    kind = "whole number"


class DecimalNumberWidget(FriendlyNumberWidget, widgets.DecimalWidget):
    kind = "number"


class LeadResource(resources.ModelResource):
    company_size = fields.Field(
        attribute="company_size", column_name="company_size", widget=WholeNumberWidget()
    )
    annual_revenue = fields.Field(
        attribute="annual_revenue", column_name="annual_revenue", widget=DecimalNumberWidget()
    )
    campaign = fields.Field(
        attribute="campaign",
        column_name="campaign",
        widget=StrictForeignKeyWidget(Campaign, field="name"),
    )

    class Meta:
        model = Lead
        fields = IMPORT_FIELDS
        import_id_fields = ("email",)
        # Run full_clean on every row so bad emails, choices and lengths are reported per row.
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    def before_import_row(self, row, **kwargs):
        # Normalise what people type in spreadsheets before validation.
        for key in ("email", "country", "source", "seniority"):
            if row.get(key) is not None:
                row[key] = str(row[key]).strip()
        if row.get("country"):
            row["country"] = row["country"].upper()
        for key in ("source", "seniority"):
            if row.get(key):
                row[key] = row[key].lower()

    def get_instance(self, instance_loader, row):
        # The same person may be typed Ann@X.com or ann@x.com: update, don't duplicate.
        email = (row.get("email") or "").strip()
        if not email:
            return None
        return Lead.objects.filter(email__iexact=email).first()
