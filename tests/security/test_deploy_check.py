"""Production settings as a browser meets them (issue 7, item 10): cookies Secure/HttpOnly/SameSite,
HSTS, HTTPS redirect, a Content-Security-Policy on every page.

The production probe runs in a fresh process with DEBUG off (like tests/test_settings.py, which also
runs `manage.py check --deploy --fail-level WARNING` on the same settings), on a throw-away in-memory
SQLite database: it migrates, signs a user in over HTTPS and prints what the responses carried.
"""

import json

import pytest

from tests.test_settings import PRODUCTION, django

PROBE = """
import json
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings

call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
get_user_model().objects.create_user("probe", password="A-long-probe-password-93kd")

# Collected static files are not needed to see headers: render templates with plain static storage.
with override_settings(STORAGES={
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}):
    client = Client(HTTP_HOST="accord.example.com")
    plain = client.get("/login/")
    page = client.get("/login/", secure=True)
    credentials = {"username": "probe", "password": "A-long-probe-password-93kd"}
    login = client.post("/login/", credentials, secure=True)

def cookie(response, name):
    morsel = response.cookies[name]
    return {"secure": bool(morsel["secure"]), "httponly": bool(morsel["httponly"]),
            "samesite": morsel["samesite"]}

print(json.dumps({
    "http_status": plain.status_code, "http_location": plain.get("Location"),
    "page_status": page.status_code, "login_status": login.status_code,
    "hsts": page.get("Strict-Transport-Security"),
    "csp": page.get("Content-Security-Policy"),
    "nosniff": page.get("X-Content-Type-Options"), "frame": page.get("X-Frame-Options"),
    "referrer": page.get("Referrer-Policy"),
    "csrf_cookie": cookie(page, "csrftoken"), "session_cookie": cookie(login, "sessionid"),
}))
"""


@pytest.fixture(scope="module")
def production():
    out = django(PROBE, **PRODUCTION, DATABASE_URL="sqlite:///:memory:")
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_plain_http_is_redirected_to_https(production):
    assert production["http_status"] == 301
    assert production["http_location"] == "https://accord.example.com/login/"


def test_hsts_is_a_year_with_subdomains_and_preload(production):
    assert production["page_status"] == 200
    assert production["hsts"] == "max-age=31536000; includeSubDomains; preload"


def test_session_and_csrf_cookies_are_secure_httponly_and_samesite(production):
    assert production["login_status"] == 302  # signed in, so the session cookie was set
    expected = {"secure": True, "httponly": True, "samesite": "Lax"}
    assert production["session_cookie"] == expected
    assert production["csrf_cookie"] == expected


def test_other_protective_headers(production):
    assert production["nosniff"] == "nosniff"
    assert production["frame"] == "DENY"
    assert production["referrer"] == "same-origin"


def _directives(header: str) -> dict[str, list[str]]:
    parts = (part.strip().split() for part in header.split(";") if part.strip())
    return {words[0]: words[1:] for words in parts}


def test_production_pages_carry_a_strict_content_security_policy(production):
    csp = _directives(production["csp"])
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval, no other origin
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/login/",
        "/board/",
        "/leads/{lead}/",
        "/reports/funnel/",
        "/admin/",
        "/admin/leads/lead/",
        "/admin/scoring/scoringmodel/",
    ],
)
def test_every_page_carries_the_policy(client, world, url):
    if url != "/login/":
        client.force_login(world.manager)
    response = client.get(url.format(lead=world.mql.lead_id))
    assert response.status_code == 200
    csp = _directives(response["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp.get("script-src", []) + csp.get("default-src", [])
