"""CSV import of leads through the admin, the way a marketer does it: upload, review, confirm."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from leads.models import Lead
from tests.leads.factories import CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db

HEADER = "email,first_name,last_name,job_title,seniority,company,company_size,country,source,campaign\n"


def upload(client, text):
    """Step 1 of the admin import: upload the file; the answer is the review page."""
    return client.post(
        reverse("admin:leads_lead_import"),
        {
            "resource": "0",
            "format": "0",
            "import_file": SimpleUploadedFile("leads.csv", text.encode(), content_type="text/csv"),
        },
    )


def confirm(client, review):
    """Step 2: press "Confirm import" on the review page."""
    form = review.context["confirm_form"]
    data = {name: field.initial if field.initial is not None else form.initial.get(name)
            for name, field in form.fields.items()}
    data.update({k: v for k, v in form.initial.items()})
    return client.post(reverse("admin:leads_lead_process_import"), data, follow=True)


def test_a_clean_file_is_reviewed_then_imported(client_for, marketer):
    client = client_for(marketer)
    CampaignFactory(name="Spring Search")
    review = upload(
        client,
        HEADER
        + "ann@acme.com,Ann,Lee,VP Marketing,vp,Acme,450,de,Paid,Spring Search\n"
        + "bo@beta.io,Bo,Ng,Analyst,entry,Beta,12,US,inbound,\n",
    )
    assert review.status_code == 200
    assert Lead.objects.count() == 0, "nothing is stored before the marketer confirms"
    assert review.context["confirm_form"] is not None

    done = confirm(client, review)

    assert done.status_code == 200
    ann = Lead.objects.get(email="ann@acme.com")
    assert (ann.country, ann.source, ann.campaign.name, ann.company_size) == ("DE", "paid", "Spring Search", 450)
    assert ann.stage == "lead" and ann.score == 0
    assert Lead.objects.count() == 2


def test_a_file_with_bad_rows_shows_each_rejected_row_and_stores_nothing(client_for, marketer):
    client = client_for(marketer)
    review = upload(
        client,
        HEADER
        + "good@acme.com,Good,Row,CTO,c_level,Acme,90,GB,inbound,\n"
        + "not-an-email,Bad,Email,CTO,c_level,Acme,90,GB,inbound,\n"
        + "src@acme.com,Bad,Source,CTO,c_level,Acme,90,GB,billboard,\n"
        + "size@acme.com,Bad,Size,CTO,c_level,Acme,lots,GB,inbound,\n"
        + "camp@acme.com,Bad,Campaign,CTO,c_level,Acme,90,GB,paid,No Such Campaign\n",
    )

    assert review.status_code == 200
    result = review.context["result"]
    assert result.has_validation_errors()
    bad_rows = {row.number: row for row in result.invalid_rows}
    assert set(bad_rows) == {2, 3, 4, 5}
    assert "email" in bad_rows[2].error_dict
    assert "source" in bad_rows[3].error_dict
    assert "is not a whole number" in str(bad_rows[4].error_dict["company_size"])
    assert "unknown campaign" in str(bad_rows[5].error_dict["campaign"])
    page = review.content.decode()
    assert "No Such Campaign" in page and "Confirm import" not in page
    assert Lead.objects.count() == 0


def test_importing_an_existing_email_in_another_case_updates_that_lead(client_for, marketer):
    client = client_for(marketer)
    existing = LeadFactory(email="Ann@Acme.com", job_title="Analyst")
    review = upload(client, HEADER + "ann@ACME.com,Ann,Lee,Director of Sales,director,Acme,450,DE,inbound,\n")
    confirm(client, review)

    assert Lead.objects.count() == 1
    existing.refresh_from_db()
    assert existing.job_title == "Director of Sales"


@pytest.mark.parametrize("role", ["sdr", "manager"])
def test_only_marketers_may_import(client_for, request, role):
    client = client_for(request.getfixturevalue(role))
    response = upload(client, HEADER + "x@acme.com,X,Y,CTO,c_level,Acme,90,GB,inbound,\n")
    assert response.status_code in (302, 403)
    assert Lead.objects.count() == 0


def test_the_import_page_says_a_file_with_errors_is_not_imported(client_for, marketer):
    page = client_for(marketer).get(reverse("admin:leads_lead_import")).content.decode()
    assert "If any row has an error, nothing from the file is imported" in page
