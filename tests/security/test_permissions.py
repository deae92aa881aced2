"""Who may do what (issue 7, item 9): every role × every action → the expected answer, and nothing
changes where the answer is a refusal.

Roles: anonymous, the SDR who owns the handoffs (`sdr`), another SDR (`sdr2`), a Marketer, a Manager.
The board actions target `sdr`'s handoffs, so for `sdr2` they are "another SDR's handoff" (404: the
board never reveals it exists). Without JavaScript a successful board action is a 302 back to the
board; with htmx it would be a 200 fragment (tests/handoff/test_board_views.py covers both).
"""

import json
from datetime import UTC, datetime

import pytest
from django.test import Client

from scoring.models import ScoringModel
from tests.security.conftest import TOKEN, model_form_data, snapshot

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "sdr", "sdr2", "marketer", "manager")
LOGIN = "login"  # a 302 to a login page (the site's, or the admin's for non-staff users)


def _post(path, data=None):
    return lambda client, w: client.post(path(w), data(w) if data else {})


def _get(path):
    return lambda client, w: client.get(path(w))


def _api(with_token):
    def call(client, w):
        body = {
            "external_id": "perm-1",
            "email": "perm@example.com",
            "kind": "page_view",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"} if with_token else {}
        return client.post(
            "/api/v1/interactions", json.dumps(body), content_type="application/json", **headers
        )

    return call


BANT = {"budget": "40k", "authority": "CMO signs", "need": "Scoring", "timing": "Q3", "note": ""}

# action → (how, whether a success changes state)
ACTIONS = {
    "board view": (_get(lambda w: "/board/"), False),
    "accept": (_post(lambda w: f"/handoffs/{w.mql.pk}/accept"), True),
    "qualify": (_post(lambda w: f"/handoffs/{w.sal.pk}/qualify", lambda w: BANT), True),
    "reject": (
        _post(
            lambda w: f"/handoffs/{w.mql.pk}/reject",
            lambda w: {"reason": w.reason.pk, "note": "No budget this year"},
        ),
        True,
    ),
    "claim": (_post(lambda w: f"/handoffs/{w.unassigned.pk}/claim"), True),
    "reassign": (_post(lambda w: f"/handoffs/{w.mql.pk}/reassign", lambda w: {"assignee": w.sdr2.pk}), True),
    "lead detail": (_get(lambda w: f"/leads/{w.mql.lead_id}/"), False),
    "rule edit (admin)": (
        _post(
            lambda w: f"/admin/scoring/scoringmodel/{w.active.pk}/change/",
            lambda w: model_form_data(w.active, **{"fit_rules-0-points": "25"}),
        ),
        True,
    ),
    "publish (admin)": (_post(lambda w: f"/admin/scoring/scoringmodel/{w.draft.pk}/publish/"), True),
    "reports page": (_get(lambda w: "/reports/funnel/"), False),
    "report CSV": (_get(lambda w: "/reports/funnel/?format=csv"), False),
    "API with token": (_api(with_token=True), True),
    "API without token": (_api(with_token=False), True),
}

# The expected answer, per role in ROLES order.
EXPECTED = {
    "board view": (LOGIN, 200, 200, 403, 200),
    "accept": (LOGIN, 302, 404, 403, 302),
    "qualify": (LOGIN, 302, 404, 403, 302),
    "reject": (LOGIN, 302, 404, 403, 302),
    # The unassigned MQL may be claimed by any SDR. Not by a manager, although they hold work_handoff
    # too: claiming makes you the assignee and handoffs belong to SDRs; managers reassign instead.
    "claim": (LOGIN, 302, 302, 403, 403),
    "reassign": (LOGIN, 403, 403, 403, 302),
    "lead detail": (LOGIN, 200, 404, 200, 200),
    "rule edit (admin)": (LOGIN, LOGIN, LOGIN, 302, 403),
    "publish (admin)": (LOGIN, LOGIN, LOGIN, 302, 403),
    "reports page": (LOGIN, 403, 403, 200, 200),
    "report CSV": (LOGIN, 403, 403, 200, 200),
    "API with token": (202, 202, 202, 202, 202),  # the token decides, never the session
    "API without token": (401, 401, 401, 401, 401),  # a session is not enough
}

CASES = [(action, role, EXPECTED[action][i]) for action in ACTIONS for i, role in enumerate(ROLES)]


def allowed(expected) -> bool:
    return expected != LOGIN and expected < 400


@pytest.mark.parametrize("action, role, expected", CASES, ids=[f"{a} as {r}" for a, r, _ in CASES])
def test_each_role_gets_the_expected_answer_and_a_refusal_changes_nothing(world, action, role, expected):
    client = Client()
    if role != "anonymous":
        client.force_login(getattr(world, role))
    how, mutates = ACTIONS[action]
    before = snapshot()

    response = how(client, world)

    if expected == LOGIN:
        assert response.status_code == 302, response.content[:300]
        assert "/login/" in response["Location"]
    else:
        assert response.status_code == expected, response.content[:300]
    if expected == 302:  # a successful action without JavaScript goes back to where it belongs
        assert "/login/" not in response["Location"]
    after = snapshot()
    if allowed(expected) and mutates:
        assert after != before, f"{action} as {role} was answered {expected} but changed nothing"
    else:
        assert after == before, f"{action} as {role} was refused ({response.status_code}) but changed state"


def test_the_matrix_covers_every_role_and_action():
    assert set(EXPECTED) == set(ACTIONS)
    assert all(len(answers) == len(ROLES) for answers in EXPECTED.values())


def test_publishing_as_a_marketer_really_publishes(world, client_for):
    """The matrix's 302 for the marketer is the publish itself, not a bounce to a confirmation page."""
    client_for(world.marketer).post(f"/admin/scoring/scoringmodel/{world.draft.pk}/publish/")
    assert ScoringModel.objects.get(pk=world.draft.pk).status == "active"
    assert ScoringModel.objects.get(pk=world.active.pk).status == "archived"
