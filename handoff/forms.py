"""Input of the board: its filters (GET) and the reject, qualify and reassign dialogs (POST)."""

from urllib.parse import urlencode

from django import forms

from leads.models import Source

from . import selectors
from .models import RejectionReason
from .selectors import BoardFilters, Owner, Sla
from .services import active_sdrs

OWNER_CHOICES = [(Owner.MINE, "Mine"), (Owner.ALL, "All"), (Owner.UNASSIGNED, "Unassigned")]
SLA_CHOICES = [
    ("", "Any SLA state"),
    (Sla.ON_TRACK, "On track"),
    (Sla.DUE_SOON, "Due soon (< 4 h)"),
    (Sla.OVERDUE, "Overdue"),
]
VIEW_CHOICES = [("open", "Open: MQL · SAL · SQL"), ("closed", "Recycled / disqualified (30 days)")]


class BoardFilterForm(forms.Form):
    """The board's GET parameters. A bad value never fails the page: it falls back to its default."""

    view = forms.ChoiceField(choices=VIEW_CHOICES, required=False, label="Show")
    owner = forms.ChoiceField(choices=OWNER_CHOICES, required=False, label="Owner")
    source = forms.ChoiceField(choices=[("", "Any source"), *Source.choices], required=False, label="Source")
    campaign = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Campaign")
    sla = forms.ChoiceField(choices=SLA_CHOICES, required=False, label="SLA (MQLs)")

    def __init__(self, data, *, user, campaigns=None, **kwargs):
        super().__init__(data, **kwargs)
        self.user = user
        self.fields["campaign"].choices = [("", "Any campaign"), *(campaigns or [])]

    def default_owner(self) -> str:
        return Owner.ALL if selectors.is_manager(self.user) else Owner.MINE

    def filters(self) -> BoardFilters:
        self.is_valid()
        data = self.cleaned_data
        limits = {}
        for stage in ("mql", "sal", "sql", "recycled", "disqualified"):
            raw = self.data.get(f"limit_{stage}", "")
            if raw.isdigit():
                limits[stage] = int(raw)
        return BoardFilters(
            view=data.get("view") or "open",
            owner=data.get("owner") or self.default_owner(),
            source=data.get("source") or "",
            campaign=data.get("campaign") or None,
            sla=data.get("sla") or "",
            limits=limits,
        )

    def initial_values(self, filters: BoardFilters) -> dict:
        return {
            "view": filters.view,
            "owner": filters.owner,
            "source": filters.source,
            "campaign": filters.campaign or "",
            "sla": filters.sla,
        }


def filters_querystring(filters: BoardFilters) -> str:
    """The filters as a query string (without limits), for the poll, "Show more" and links."""
    params = {
        "view": filters.view,
        "owner": filters.owner,
        "source": filters.source,
        "campaign": filters.campaign or "",
        "sla": filters.sla,
    }
    return urlencode({k: v for k, v in params.items() if v})


class DialogForm(forms.Form):
    """A dialog's form: labels without a colon, and the first field focused when the dialog opens."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        first = next(iter(self.fields.values()))
        first.widget.attrs["autofocus"] = True


class RejectForm(DialogForm):
    reason = forms.ModelChoiceField(
        queryset=RejectionReason.objects.filter(active=True).order_by("label"),
        empty_label="Choose a reason…",
        label="Reason",
        error_messages={
            "required": "Choose a reason.",
            "invalid_choice": "Choose one of the listed reasons.",
        },
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=2000,
        label="Note",
        help_text="What marketing should know (optional).",
    )


class QualifyForm(DialogForm):
    """BANT: each answer is required (write "unknown" if it is); the note is optional."""

    budget = forms.CharField(max_length=500, label="Budget", help_text="e.g. 40k approved for Q3")
    authority = forms.CharField(max_length=500, label="Authority", help_text="Who signs?")
    need = forms.CharField(max_length=500, label="Need", help_text="The problem they want solved")
    timing = forms.CharField(max_length=500, label="Timing", help_text="When they want to buy")
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=2000,
        label="Note",
        help_text="Anything else sales should know (optional).",
    )


class ReassignForm(DialogForm):
    assignee = forms.ModelChoiceField(
        queryset=active_sdrs().order_by("username"),
        required=False,
        empty_label="Nobody (unassigned)",
        label="Assign to",
        error_messages={"invalid_choice": "Choose an active SDR."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].label_from_instance = lambda u: u.get_full_name() or u.get_username()
