"""Writes to leads and API tokens. Views, admin, API and commands call these."""

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .models import ApiToken, hash_token


@transaction.atomic
def api_token_create(*, name: str, created_by=None) -> tuple[ApiToken, str]:
    """Create a token; return it with the raw value, which is never stored."""
    raw = ApiToken.generate()
    token = ApiToken.objects.create(
        name=name, token_hash=hash_token(raw), prefix=raw[:8], created_by=created_by
    )
    return token, raw


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The active token with this raw value, or None."""
    if not raw:
        return None
    return ApiToken.objects.filter(token_hash=hash_token(raw), revoked_at__isnull=True).first()


def api_token_revoke(*, tokens: QuerySet) -> int:
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
