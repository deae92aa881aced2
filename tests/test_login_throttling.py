"""Login throttling (django-axes): repeated failures pause sign-in for a cool-off, never forever."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt

pytestmark = pytest.mark.django_db


def attempt(client, username, password, ip="10.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_five_failures_lock_that_user_out_even_with_the_right_password(client, sdr):
    for _ in range(4):
        assert attempt(client, "sdr", "wrong").status_code == 200  # the form again, with an error
    assert attempt(client, "sdr", "wrong").status_code == 429  # the fifth failure locks
    response = attempt(client, "sdr", "pw-for-tests")
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lockout_ends_after_the_cool_off(client, sdr, settings):
    for _ in range(5):
        attempt(client, "sdr", "wrong")
    assert attempt(client, "sdr", "pw-for-tests").status_code == 429
    # Fifteen minutes later (the default cool-off):
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.first().attempt_time - timedelta(minutes=16))
    response = attempt(client, "sdr", "pw-for-tests")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(sdr.pk)


def test_another_user_or_address_is_not_locked_out_by_someone_elses_failures(client, sdr, sdr2):
    for _ in range(5):
        attempt(client, "sdr", "wrong")
    assert attempt(client, "sdr2", "pw-for-tests").status_code == 302
    client.logout()
    assert attempt(client, "sdr", "pw-for-tests", ip="10.0.0.2").status_code == 302


def test_a_success_resets_the_failure_count(client, sdr):
    for _ in range(4):
        attempt(client, "sdr", "wrong")
    assert attempt(client, "sdr", "pw-for-tests").status_code == 302
    client.logout()
    for _ in range(4):
        attempt(client, "sdr", "wrong")
    assert attempt(client, "sdr", "pw-for-tests").status_code == 302
