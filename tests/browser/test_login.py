import pytest
from django.core.management import call_command

# serialized_rollback: the flush after a transactional test would otherwise drop the groups,
# kinds and reasons that migrations seed.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_demo_user_signs_in_through_the_login_page(page, live_server, sign_in):
    call_command("seed_demo", "--leads", "30", "--seed", "1", verbosity=0)

    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url, "an anonymous visitor is sent to the login page"

    sign_in("marketer", "accord-demo")

    assert page.get_by_role("heading", name="Welcome").is_visible()
    assert page.get_by_role("button", name="Log out").is_visible()
    from leads.models import Lead

    assert page.locator("td[data-stage=lead]").inner_text() == str(Lead.objects.filter(stage="lead").count())


def test_a_wrong_password_is_refused_with_a_message(page, live_server, sign_in, marketer):
    sign_in("marketer", "not-the-password")

    assert "/login/" in page.url
    assert page.get_by_role("alert").is_visible()
    assert "correct username and password" in page.get_by_role("alert").inner_text()
