"""JSON API for marketing tools (django-ninja), mounted at /api/v1/. See docs/api.md.

Thin on purpose: HTTP in, HTTP out. Validation and writes live in leads.ingest.
Auth is a bearer token only (no session, hence no CSRF); the site's LoginRequiredMiddleware lets
these URLs through (see AccordAPI._get_urls).
"""

import json
import math
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, UnreadablePostError
from django.urls import register_converter
from ninja import NinjaAPI, P, PathEx, Status
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import REF_TEMPLATE
from ninja.openapi.views import openapi_json
from ninja.security import HttpBearer

from . import ingest
from .ingest import IngestError, error
from .models import Lead
from .schemas import (
    AcceptedOut,
    DetailOut,
    ErrorsOut,
    InteractionBatchIn,
    InteractionIn,
    LeadOut,
    LeadUpsertIn,
)
from .services import api_token_authenticate

MAX_BODY_BYTES = 1024 * 1024

UNAUTHORIZED = "missing or invalid API token (send the header Authorization: Bearer <token>)"


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`: an active ApiToken (request.auth is the token)."""

    def authenticate(self, request: HttpRequest, token: str):
        api_token = api_token_authenticate(token.strip())
        if api_token is not None:
            ingest.api_token_mark_used(token=api_token)
        return api_token


def _docs_access(view):
    """The OpenAPI document and the docs page: for a valid token or a signed-in user."""

    is_document = getattr(view, "func", None) is openapi_json

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        if request.user.is_authenticated or TokenAuth()(request) is not None:
            return view(request, *args, **kwargs)
        if is_document:
            return _unauthorized(request)
        return redirect_to_login(request.get_full_path())

    return guarded


class AccordAPI(NinjaAPI):
    def _get_urls(self):
        urls = super()._get_urls()
        for pattern in urls:
            # Token-authenticated, never session: exempt from the site's LoginRequiredMiddleware.
            pattern.callback = login_not_required(pattern.callback)
        return urls

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        # Request bodies are parsed by hand (size limits, error shape); document their models.
        schema.add_schema_definitions(_BODY_SCHEMAS)
        return schema


api = AccordAPI(
    title="Accord API",
    version="1",
    urls_namespace="api",
    description="Push interactions and lead data; read back a lead's stage and score. See docs/api.md.",
    auth=TokenAuth(),
    docs_decorator=_docs_access,
)


# --- request bodies ---------------------------------------------------------------------------

_BODY_SCHEMAS: dict[str, Any] = {}


def _request_body(*models) -> dict:
    refs = []
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        _BODY_SCHEMAS.update(schema.pop("$defs", {}))
        _BODY_SCHEMAS[model.__name__] = schema
        refs.append({"$ref": REF_TEMPLATE.format(model=model.__name__)})
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _json_body(request: HttpRequest) -> Any:
    """The request body as JSON, or IngestError (413 over 1 MB, 400 if not UTF-8 JSON)."""
    too_big = IngestError([error(None, "", "request body is larger than 1 MB")], status=413)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise too_big
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_big from None
    except UnreadablePostError:
        raise IngestError([error(None, "", "the request body could not be read")]) from None
    if len(body) > MAX_BODY_BYTES:
        raise too_big
    if not body.strip():
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            message = "send the body with a Content-Length header (chunked uploads are not supported)"
        else:
            message = "request body is empty; send a JSON object"
        raise IngestError([error(None, "", message)])
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError([error(None, "", f"request body is not valid UTF-8 (byte {exc.start})")]) from None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise IngestError([error(None, "", "malformed JSON: nested too deeply")]) from None
    except ValueError as exc:  # json.JSONDecodeError, and the hooks above
        raise IngestError([error(None, "", f"malformed JSON: {exc}")]) from None


# --- errors -----------------------------------------------------------------------------------

def _unauthorized(request: HttpRequest) -> HttpResponse:
    response = api.create_response(request, {"detail": UNAUTHORIZED}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="accord"'
    return response


@api.exception_handler(AuthenticationError)
def _on_authentication_error(request, exc):
    return _unauthorized(request)


@api.exception_handler(IngestError)
def _on_ingest_error(request, exc: IngestError):
    return api.create_response(request, {"errors": exc.errors}, status=exc.status)


@api.exception_handler(NinjaValidationError)
def _on_validation_error(request, exc: NinjaValidationError):
    # ninja's 422 for parameters, in the API's error shape: loc ("path", "email") → field "email".
    errors = [
        error(None, ".".join(str(part) for part in err.get("loc", ())[1:]), err.get("msg", "invalid"))
        for err in exc.errors
    ]
    return api.create_response(request, {"errors": errors}, status=400)


@api.exception_handler(Http404)
def _on_not_found(request, exc):
    return api.create_response(request, {"detail": "not found"}, status=404)


# --- endpoints --------------------------------------------------------------------------------

def _lead_out(lead: Lead) -> dict:
    return {
        "email": lead.email,
        "stage": lead.stage,
        "score": lead.score,
        "fit_score": lead.fit_score,
        "engagement_score": lead.engagement_score,
        "breakdown": list(lead.score_breakdown or []),
        "scored_at": lead.scored_at,
        "owner": lead.owner.get_username() if lead.owner_id else None,
    }


@api.post(
    "/interactions",
    response={202: AcceptedOut, 400: ErrorsOut, 401: DetailOut, 413: ErrorsOut, 503: DetailOut},
    openapi_extra=_request_body(InteractionIn, InteractionBatchIn),
    summary="Store interactions",
)
def post_interactions(request):
    """One interaction, or {"interactions": [...]} (1 to 1000). A repeated external_id is a
    duplicate: stored once, counted once. Any invalid item: 400 and nothing is stored."""
    result = ingest.interactions_ingest(payload=_json_body(request))
    return Status(202, {"accepted": result.accepted, "duplicates": result.duplicates})


@api.post(
    "/leads",
    response={200: LeadOut, 201: LeadOut, 400: ErrorsOut, 401: DetailOut, 413: ErrorsOut, 503: DetailOut},
    openapi_extra=_request_body(LeadUpsertIn),
    summary="Create or update a lead",
)
def post_lead(request):
    """Upsert one lead by email (case-insensitive): 201 when created, 200 when updated. Only the
    fields sent change; stage, scores and owner are never written here."""
    lead, created = ingest.lead_upsert(payload=_json_body(request))
    return Status(201 if created else 200, _lead_out(lead))


class _AnyTextConverter:
    """Django's `path` converter, but matching line breaks too: an email with a stray newline still
    reaches the view and gets the API's JSON 404 instead of Django's HTML page."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(_AnyTextConverter, "anytext")


@api.get(
    "/leads/{anytext:email}",
    response={200: LeadOut, 401: DetailOut, 404: DetailOut, 503: DetailOut},
    summary="Read a lead's stage and score",
)
def get_lead(request, email: PathEx[str, P(example="ann@acme.example")]):
    """The lead with this email (case-insensitive; URL-encode it, e.g. ann%40example.com)."""
    lead = ingest.lead_by_email(email)
    if lead is None:
        return Status(404, {"detail": "lead not found"})
    return _lead_out(lead)
