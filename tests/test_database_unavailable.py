"""While the database is unreachable, pages and the API answer a clean 503, never a traceback."""

import pytest
from django.db import OperationalError, ProgrammingError

from leads import ingest, views
from tests.leads.factories import ApiTokenFactory

pytestmark = pytest.mark.django_db

DOWN = OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')


def test_a_page_answers_503_with_retry_after_while_the_database_is_down(client_for, sdr, monkeypatch):
    client = client_for(sdr)
    monkeypatch.setattr(views, "lead_counts_by_stage", lambda: (_ for _ in ()).throw(DOWN))
    response = client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "briefly unavailable" in response.content.decode()


def test_the_api_answers_json_503_while_the_database_is_down(client, monkeypatch):
    ApiTokenFactory(raw="tok-503")
    monkeypatch.setattr(ingest, "lead_by_email", lambda email: (_ for _ in ()).throw(DOWN))
    response = client.get("/api/v1/leads/a@b.co", HTTP_AUTHORIZATION="Bearer tok-503")
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable, retry shortly"}


def test_a_programming_error_is_not_disguised_as_unavailability(client_for, sdr, monkeypatch):
    client = client_for(sdr)
    client.raise_request_exception = False
    monkeypatch.setattr(views, "lead_counts_by_stage", lambda: (_ for _ in ()).throw(ProgrammingError("no such column")))
    assert client.get("/").status_code == 500


def test_every_response_says_how_long_the_server_and_database_took(client_for, sdr):
    timing = client_for(sdr).get("/")["Server-Timing"]
    app, db = timing.split(", ")
    assert app.startswith("app;dur=") and float(app.split("=")[1]) > 0
    assert db.startswith("db;dur=") and 'queries"' in db
