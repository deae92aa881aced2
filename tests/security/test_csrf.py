"""CSRF on every state-changing browser request; the API is token-only (issue 7, item 10).

Every URL of the site except the token-authenticated API is POSTed to by a signed-in superuser whose
client enforces CSRF checks and sends no token: each answer is 403 and nothing changes. Then the same
kind of requests with the token succeed, so the 403s are CSRF and not something else.
"""

import json
import re
from datetime import UTC, datetime

import pytest
from django.contrib.admindocs.views import extract_views_from_urlpatterns, simplify_regex
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import Resolver404, get_resolver, resolve

from leads.models import Interaction
from tests.security.conftest import TOKEN, model_form_data, snapshot

pytestmark = pytest.mark.django_db

FILL = {"<slug:stage>": "mql", "<app_label>": "leads"}


def browser_urls() -> list[str]:
    """Every route of the site outside /api/v1/, with placeholders filled so that it resolves (the
    CSRF check runs before the view, so the ids need not exist)."""
    urls = set()
    for _view, regex, _ns, _name in extract_views_from_urlpatterns(get_resolver().url_patterns):
        path = simplify_regex(regex)
        if path.startswith("/api/") or path == "/admin/<url>":
            continue
        for placeholder, value in FILL.items():
            path = path.replace(placeholder, value)
        path = re.sub(r"<[^>]+>", "1", path)
        try:
            resolve(path)
        except Resolver404:  # pragma: no cover - a pattern this filler does not understand
            continue
        urls.add(path)
    return sorted(urls)


URLS = browser_urls()


def test_the_url_list_includes_the_board_actions_logout_admin_and_publish():
    for url in (
        "/handoffs/1/accept",
        "/handoffs/1/qualify",
        "/handoffs/1/reject",
        "/handoffs/1/claim",
        "/handoffs/1/reassign",
        "/logout/",
        "/login/",
        "/admin/scoring/scoringmodel/1/change/",
        "/admin/scoring/scoringmodel/1/publish/",
        "/admin/leads/lead/1/delete/",
        "/admin/scoring/scoringmodel/import/",
        "/admin/leads/lead/import/",
    ):
        assert url in URLS
    assert len(URLS) > 100


@pytest.fixture
def csrf_client(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "root-pw-93kd"))
    return client


def test_a_post_without_the_csrf_token_is_refused_everywhere(csrf_client, security_figures):
    before = snapshot()
    wrong = {}
    for url in URLS:
        response = csrf_client.post(url, {"note": "x"})
        if response.status_code != 403 or b"CSRF" not in response.content:
            wrong[url] = response.status_code
    security_figures["csrf"] = {"urls_posted_without_token": len(URLS), "not_refused": len(wrong)}
    assert not wrong, f"POSTs without a CSRF token that were not refused with a CSRF 403: {wrong}"
    assert snapshot() == before


def _token(client, page="/board/") -> str:
    client.get(page)
    return client.cookies["csrftoken"].value


def test_board_actions_work_with_the_token_from_the_page(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.sdr)
    token = _token(client)

    # htmx sends it as the X-CSRFToken header (hx-headers on <body>); a plain form as a field.
    accepted = client.post(f"/handoffs/{world.mql.pk}/accept", HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true")
    qualified = client.post(
        f"/handoffs/{world.sal.pk}/qualify",
        {
            "csrfmiddlewaretoken": token,
            "budget": "40k",
            "authority": "CMO",
            "need": "Scoring",
            "timing": "Q3",
        },
    )

    assert accepted.status_code == 200
    assert qualified.status_code == 302
    world.mql.refresh_from_db()
    world.sal.refresh_from_db()
    assert (world.mql.stage, world.sal.stage) == ("sal", "sql")


def test_the_board_page_carries_the_token_for_htmx(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.sdr)
    html = client.get("/board/").content.decode()
    assert re.search(r"""<body hx-headers='\{"X-CSRFToken": "[\w-]{32,}"\}'>""", html)


def test_admin_change_and_publish_work_with_the_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.marketer)
    token = _token(client, f"/admin/scoring/scoringmodel/{world.active.pk}/change/")

    changed = client.post(
        f"/admin/scoring/scoringmodel/{world.active.pk}/change/",
        {**model_form_data(world.active, mql_threshold="65"), "csrfmiddlewaretoken": token},
    )
    published = client.post(
        f"/admin/scoring/scoringmodel/{world.draft.pk}/publish/", {"csrfmiddlewaretoken": token}
    )

    assert (changed.status_code, published.status_code) == (302, 302)
    world.draft.refresh_from_db()
    assert world.draft.status == "active"


def test_logging_out_needs_the_token_and_a_refused_logout_keeps_the_session(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.sdr)

    assert client.post("/logout/").status_code == 403
    assert client.get("/board/").status_code == 200  # still signed in

    assert client.post("/logout/", {"csrfmiddlewaretoken": _token(client)}).status_code == 302
    assert client.get("/board/").status_code == 302  # signed out


def _interaction():
    return json.dumps(
        {
            "external_id": "csrf-1",
            "email": "csrf@example.com",
            "kind": "page_view",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
    )


def test_the_api_ignores_the_session_a_signed_in_browser_without_a_token_gets_401(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.marketer)
    token = _token(client, "/")

    for extra in ({}, {"HTTP_X_CSRFTOKEN": token}):
        response = client.post(
            "/api/v1/interactions", _interaction(), content_type="application/json", **extra
        )
        assert response.status_code == 401
    assert not Interaction.objects.exists()


def test_the_api_with_a_token_needs_no_csrf_token(world):
    response = Client(enforce_csrf_checks=True).post(
        "/api/v1/interactions",
        _interaction(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    assert response.status_code == 202
    assert Interaction.objects.count() == 1
