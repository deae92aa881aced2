"""The marketer's scoring admin in real headless Chromium: editing the active model."""

import pytest

from leads.models import Lead
from scoring import services
from scoring.models import RescoreRun
from tests.browser.conftest import ARTIFACTS
from tests.leads.factories import LeadFactory
from tests.scoring.builders import interact, make_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DEMO = {"kind": "demo_request", "label": "Demo request", "points": 40, "within_days": 90}
VP = ("VP title", "job_title", "contains", "vp", 20)


def test_editing_a_fit_rule_of_the_active_model_rescores_fit_and_says_so(page, sign_in, live_server, marketer):
    model = make_model(name="Live", threshold=60, fit=[VP], behavior=[DEMO], status="active")
    vp, analyst = LeadFactory(job_title="VP Sales"), LeadFactory(job_title="Analyst")
    for lead in (vp, analyst):
        interact(lead, "demo_request")
    services.leads_rescore(lead_ids=[vp.pk, analyst.pk])
    assert Lead.objects.get(pk=vp.pk).stage == "mql"  # 20 + 40

    sign_in("marketer", "pw-for-tests")
    page.goto(f"{live_server.url}/admin/scoring/scoringmodel/{model.pk}/change/")
    page.locator('input[name="fit_rules-0-points"]').fill("15")
    page.locator('input[name="_save"]').click()
    page.wait_for_load_state()

    message = page.locator(".messagelist")
    assert "the fit of every lead is being rescored with Live v1" in message.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "scoring-edit-message.png"))
    page.get_by_role("link", name="See the rescore progress").click()
    page.wait_for_load_state()
    assert "Rescoring the fit of the leads the edited fit rules match, with Live." in page.inner_text("#content-main")
    run = RescoreRun.objects.get()
    assert (run.scope, run.status, run.changed) == ("fit", "done", 1)
    assert (Lead.objects.get(pk=vp.pk).score, Lead.objects.get(pk=analyst.pk).score) == (55, 40)
