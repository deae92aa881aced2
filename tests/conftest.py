import os

import pytest

from tests.leads.factories import UserFactory

# Under .ci/run every service-dependent test must run: a skip there is a failure.
REQUIRE_SERVICES = os.environ.get("ACCORD_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str):
    """Skip a test whose service is missing on a laptop; fail it in CI (ACCORD_REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (ACCORD_REQUIRE_SERVICES=1: a skip here is a failure)")
    pytest.skip(reason)


@pytest.fixture
def marketer(db):
    return UserFactory(username="marketer", role="Marketer")


@pytest.fixture
def sdr(db):
    return UserFactory(username="sdr", role="SDR")


@pytest.fixture
def sdr2(db):
    return UserFactory(username="sdr2", role="SDR")


@pytest.fixture
def manager(db):
    return UserFactory(username="manager", role="Manager")


@pytest.fixture
def client_for(client):
    """client_for(user) -> the test client signed in as that user."""

    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery(request):
    """Unit tests run tasks inline even when CELERY_BROKER_URL points at Redis (as in CI);
    tests marked `integration` talk to a real worker instead."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    from config.celery import app
    from scoring import tasks

    tasks._broker_down_until = 0.0  # no broker back-off carried over from another test
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def ensure_reference_data():
    """Re-create what migrations seed (interaction kinds, rejection reasons, role groups).

    A transactional test empties every table when it ends; serialized_rollback is meant to restore
    them but does not survive every mix of test kinds, so transactional tests re-seed explicitly."""
    import importlib

    from django.apps import apps

    from leads.roles import sync_roles

    importlib.import_module("leads.migrations.0002_seed_interaction_kinds").seed(apps, None)
    importlib.import_module("handoff.migrations.0002_seed_reasons_and_roles").seed_reasons(apps, None)
    sync_roles(apps)


@pytest.fixture(autouse=True)
def _reference_data_for_transactional_tests(request):
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker and marker.kwargs.get("transaction")) or {
        "transactional_db", "live_server"
    } & set(request.fixturenames)
    if transactional:
        request.getfixturevalue("transactional_db")
        ensure_reference_data()
