"""The API's input shapes, checked directly where the HTTP tests cannot reach every case."""

import pydantic
import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.schemas import InteractionIn

ADDRESS_CHARS = st.sampled_from(list("abzAZ09.-_+@[]:\"' !#é") + ["\u0130", "\n"])


def _interaction(email: str) -> InteractionIn:
    return InteractionIn.model_validate(
        {"external_id": "e1", "email": email, "kind": "page_view", "occurred_at": "2024-05-01T10:00:00+00:00"}
    )


def _django_accepts(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


def _api_accepts(address: str) -> bool:
    try:
        _interaction(email=address)
    except pydantic.ValidationError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.emails(), st.text(ADDRESS_CHARS, max_size=40)))
def test_the_api_accepts_exactly_the_addresses_django_accepts(address):
    """The compiled fast path must not widen or narrow Django's validate_email."""
    stripped = address.strip()
    expected = bool(stripped) and len(stripped) <= 254 and _django_accepts(stripped)
    assert _api_accepts(address) == expected


@pytest.mark.parametrize("address", ["ann@[127.0.0.1]", "ann@[::1]", "ann@localhost"])
def test_addresses_django_accepts_by_its_special_cases_are_accepted(address):
    assert _django_accepts(address)
    assert _api_accepts(address)


@pytest.mark.parametrize(
    "address", ["ann@[999.0.0.1]", "ann@-acme.example", "ann..b@acme.example", "ann@acme"]
)
def test_malformed_addresses_are_refused(address):
    assert not _api_accepts(address)
