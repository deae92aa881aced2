"""Who may see the reports: Managers and Marketers (handoff.view_reports); SDRs get 403; anonymous
users go to the login page."""

import pytest

from handoff.reports.views import REPORTS

pytestmark = pytest.mark.django_db
URLS = ["/reports/", *(f"/reports/{r.slug}/" for r in REPORTS), "/reports/funnel/?format=csv"]


@pytest.mark.parametrize("url", URLS)
def test_an_sdr_gets_403(client_for, sdr, url):
    assert client_for(sdr).get(url).status_code == 403


@pytest.mark.parametrize("url", URLS)
def test_anonymous_users_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/reports/")


@pytest.mark.parametrize("role", ["manager", "marketer"])
@pytest.mark.parametrize("url", URLS)
def test_managers_and_marketers_see_every_report(client_for, request, role, url):
    assert client_for(request.getfixturevalue(role)).get(url).status_code == 200


def test_reports_are_read_only(client_for, manager):
    assert client_for(manager).post("/reports/funnel/").status_code == 405


def test_the_nav_links_to_reports_only_for_those_who_may_see_them(client_for, manager, sdr):
    assert 'href="/reports/"' in client_for(manager).get("/").content.decode()
    assert 'href="/reports/"' not in client_for(sdr).get("/").content.decode()


def test_the_index_links_every_report_with_a_description(client_for, manager):
    html = client_for(manager).get("/reports/").content.decode()
    for report in REPORTS:
        assert f'href="/reports/{report.slug}/?' in html
        assert report.description.split(":")[0] in html
