"""Shapes of the JSON API (pydantic / django-ninja): what clients send and what they get back.

Input models are plain pydantic models (fast to validate in bulk); the checks that need the
database (known interaction kinds, existing campaigns) live in leads.ingest.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator, validate_email
from ninja import Schema
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from .models import Seniority, Source

MAX_ITEMS = 1000
FUTURE_TOLERANCE = timedelta(minutes=5)

# Fields a client may read but never write through the API (the state machine and the scoring
# services own them).
READ_ONLY_LEAD_FIELDS = frozenset(
    {"stage", "stage_changed_at", "score", "fit_score", "engagement_score", "score_breakdown",
     "breakdown", "scored_at", "owner", "created_at", "updated_at", "id"}
)


# --- field validators ------------------------------------------------------------------------

# Django's own patterns for the two parts of an address, compiled once: validate_email resolves
# its lazy patterns on every call, which was 40% of validating a batch of 1,000 interactions.
_USER_PART = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)
_DOMAIN_PART = re.compile(EmailValidator.domain_regex.pattern, EmailValidator.domain_regex.flags)


def _email(value: str) -> str:
    value = value.strip()
    if not value:
        raise PydanticCustomError("blank", "must not be empty")
    user, _, domain = value.rpartition("@")
    if len(value) <= 320 and _USER_PART.match(user) and _DOMAIN_PART.match(domain):
        return value  # what validate_email accepts by these patterns; it decides everything else
    try:
        validate_email(value)
    except DjangoValidationError:
        raise PydanticCustomError("email", "must be a valid email address") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


def _iso_string(value: Any) -> Any:
    # Numbers (unix timestamps) would be accepted by pydantic's lax mode; the contract is ISO 8601.
    if not isinstance(value, str):
        raise PydanticCustomError(
            "datetime_type", "must be an ISO 8601 date-time string with a UTC offset"
        )
    return value


def _not_in_future(value: datetime) -> datetime:
    # The clock itself: django.utils.timezone.now() reads settings on every call (USE_TZ is on).
    if value > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise PydanticCustomError("future", "occurred_at is in the future")
    return value


def _not_bool_or_text(value: Any) -> Any:
    # pydantic's lax mode would read true as 1 and "250" as 250; the document says integer.
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "must be a whole number")
    return value


def _choice_key(value: Any) -> Any:
    # "VP " and "vp" name the same choice.
    return value.strip().lower() if isinstance(value, str) else value


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().upper()
    if value and not (len(value) == 2 and value.isascii() and value.isalpha()):
        raise PydanticCustomError(
            "country", "must be a two-letter ISO 3166 country code, e.g. DE"
        )
    return value


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_not_blank)]
KindSlug = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True)]
OccurredAt = Annotated[AwareDatetime, BeforeValidator(_iso_string), AfterValidator(_not_in_future)]


Text100 = Annotated[str | None, StringConstraints(max_length=100, strip_whitespace=True)]
Text200 = Annotated[str | None, StringConstraints(max_length=200, strip_whitespace=True)]


SeniorityValue = Annotated[
    Literal.__getitem__(("", *Seniority.values)) | None,  # type: ignore[misc]
    BeforeValidator(_choice_key),
]
SourceValue = Annotated[
    Literal.__getitem__(tuple(Source.values)),  # type: ignore[misc]
    BeforeValidator(_choice_key),
]


# --- input -----------------------------------------------------------------------------------

class LeadFields(BaseModel):
    """Lead data. In an interaction it is used only when the lead is created; `null` clears a field."""

    model_config = ConfigDict(extra="forbid")

    first_name: Text100 = None
    last_name: Text100 = None
    job_title: Text200 = None
    seniority: SeniorityValue = None
    company: Text200 = None
    industry: Text100 = None
    company_size: Annotated[
        Annotated[int, Field(ge=0, le=2_147_483_647)] | None,
        BeforeValidator(_not_bool_or_text),
        Field(description="Employees."),
    ] = None
    annual_revenue: Annotated[
        Decimal | None, Field(ge=0, max_digits=16, decimal_places=2, allow_inf_nan=False)
    ] = None
    country: Annotated[
        str | None, AfterValidator(_country),
        Field(description="ISO 3166 alpha-2 code; stored upper-case."),
    ] = None
    source: SourceValue = Field(default=Source.INBOUND.value)
    campaign: Annotated[
        str | None,
        StringConstraints(max_length=200, strip_whitespace=True),
        Field(description="The name of an existing campaign."),
    ] = None

    def model_values(self, *, only_set: bool) -> dict[str, Any]:
        """Field values for the Lead model (None becomes "" for text fields); campaign stays a name."""
        names = self.model_fields_set if only_set else type(self).model_fields.keys()
        values = {}
        for name in names:
            if name == "email":
                continue
            value = getattr(self, name)
            if value is None and name not in ("company_size", "annual_revenue", "campaign"):
                value = ""
            if name == "campaign" and value == "":
                value = None
            values[name] = value
        return values


# Examples shown by the OpenAPI document (Swagger UI); Schemathesis also sends them, so the fuzz test
# reaches the success path. Valid in any database: the kinds are the seeded ones, no campaign named.
INTERACTION_EXAMPLE = {
    "external_id": "hubspot-evt-981", "email": "ann@acme.example", "kind": "pricing_page_view",
    "occurred_at": "2024-05-01T10:00:00+02:00", "properties": {"path": "/pricing"},
    "lead": {"first_name": "Ann", "company": "Acme", "country": "de"},
}


class InteractionIn(BaseModel):
    """One interaction (one event a marketing tool saw)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [INTERACTION_EXAMPLE]})

    external_id: ExternalId = Field(description="The sender's idempotency key; a repeat is a duplicate.")
    email: Email
    kind: KindSlug = Field(description="An interaction kind slug, e.g. pricing_page_view.")
    occurred_at: OccurredAt = Field(
        description="ISO 8601 with a UTC offset; at most 5 minutes in the future."
    )
    properties: dict[str, Any] | None = Field(default=None, description="A JSON object; default {}.")
    lead: LeadFields | None = Field(default=None, description="Used only when the lead is created.")


class InteractionBatchIn(BaseModel):
    """Many interactions in one request (1 to 1000)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"interactions": [
        {"external_id": "evt-1", "email": "ann@acme.example", "kind": "page_view",
         "occurred_at": "2024-05-01T08:00:00Z"},
        {"external_id": "evt-2", "email": "bob@beta.example", "kind": "demo_request",
         "occurred_at": "2024-05-01T08:05:00Z"},
    ]}]})

    interactions: list[InteractionIn] = Field(min_length=1, max_length=MAX_ITEMS)


class LeadUpsertIn(LeadFields):
    """A lead, found by email (case-insensitive): created, or the given fields updated."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"email": "ann@acme.example", "job_title": "VP Marketing", "seniority": "vp", "company_size": 250},
    ]})

    email: Email


# --- output ----------------------------------------------------------------------------------

class AcceptedOut(Schema):
    accepted: int = Field(description="Interactions stored by this request.")
    duplicates: int = Field(description="Interactions whose external_id was already stored or repeated.")


class LeadOut(Schema):
    email: str
    stage: str
    score: int
    fit_score: int
    engagement_score: int
    breakdown: list[dict[str, Any]] = Field(description="The rules that contributed, with their points.")
    scored_at: datetime | None
    owner: str | None = Field(description="The owner's username, or null.")


class ErrorOut(Schema):
    index: int | None = Field(description="Position of the item in the request (0 for a single object); "
                              "null for a problem with the request as a whole.")
    field: str = Field(description='Dotted path of the field at fault, e.g. "lead.country"; "" for the item.')
    message: str


class ErrorsOut(Schema):
    errors: list[ErrorOut]


class DetailOut(Schema):
    detail: str
