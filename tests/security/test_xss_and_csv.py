"""Hostile lead data renders inert everywhere and CSV cells cannot run as formulas (issue 7, item 8).

Over HTTP: every page that shows the data (board, lead detail, admin lists and change pages, every
report) carries it escaped, never as markup; every CSV table of every report neutralises cells that a
spreadsheet would run as a formula. tests/security/test_xss_browser.py loads the same data in real
Chromium and checks that no script ran.
"""

import csv
import html
import io
import re

import pytest

from handoff.models import Handoff
from handoff.reports.views import REPORTS
from tests.security import hostile

pytestmark = pytest.mark.django_db

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


@pytest.fixture
def data(db):
    return hostile.build()


def pages(data) -> dict[str, tuple[str, str]]:
    """name → (who looks, URL)."""
    h0, h3 = data["handoffs"][0], data["handoffs"][3]
    lead = Handoff.objects.get(pk=h0).lead
    return {
        "board (manager)": ("manager", "/board/"),
        "board (SDR)": ("sdr", "/board/"),
        "board, closed view": ("sdr", "/board/?view=closed"),
        "board, htmx refresh": ("sdr", "/board/?hx=1"),
        "reject dialog": ("sdr", f"/handoffs/{h0}/reject/dialog"),
        "lead detail": ("manager", f"/leads/{lead.pk}/"),
        "lead detail (SDR)": ("sdr", f"/leads/{lead.pk}/"),
        "admin leads": ("marketer", "/admin/leads/lead/"),
        "admin lead": ("marketer", f"/admin/leads/lead/{lead.pk}/change/"),
        "admin campaigns": ("marketer", "/admin/leads/campaign/"),
        "admin interactions": ("marketer", "/admin/leads/interaction/"),
        "admin handoffs": ("marketer", "/admin/handoff/handoff/"),
        "admin handoff": ("marketer", f"/admin/handoff/handoff/{h3}/change/"),
        "admin transitions": ("manager", "/admin/handoff/transition/"),
        "admin reasons": ("marketer", "/admin/handoff/rejectionreason/"),
        "admin scoring models": ("marketer", "/admin/scoring/scoringmodel/"),
        "admin scoring model": ("marketer", f"/admin/scoring/scoringmodel/{data['model'].pk}/change/"),
        "reports index": ("manager", "/reports/"),
        **{f"report {r.slug}": ("manager", f"/reports/{r.slug}/") for r in REPORTS},
    }


def test_every_page_shows_the_hostile_data_escaped_and_never_as_markup(data, client, security_figures):
    seen_escaped = set()
    for name, (who, url) in pages(data).items():
        client.force_login(data[who])
        extra = {"HTTP_HX_REQUEST": "true"} if "hx=1" in url else {}
        response = client.get(url, **extra)
        assert response.status_code == 200, f"{name}: {response.status_code}"
        page = response.content.decode()
        for payload in hostile.PAYLOADS:
            assert payload not in page, f"{name} ({url}) contains the raw payload {payload!r}"
        assert "onerror=window" not in page.replace("onerror=window.__xss=1&gt;", ""), name
        if hostile.ESCAPED_SCRIPT in page or html.escape(hostile.IMG) in page:
            seen_escaped.add(name)
    security_figures["xss_pages"] = {
        "pages_checked": len(pages(data)),
        "showing_the_data_escaped": len(seen_escaped),
    }
    # The data really is on the pages people use (so the absence of raw markup means something).
    assert {
        "board (manager)",
        "board (SDR)",
        "lead detail",
        "admin leads",
        "admin lead",
        "admin handoff",
        "report acceptance",
        "report rules",
        "report cost",
    } <= seen_escaped, seen_escaped


def test_chart_data_is_embedded_as_inert_json(data, client):
    client.force_login(data["manager"])
    for report in REPORTS:
        page = client.get(f"/reports/{report.slug}/").content.decode()
        for block in re.findall(r'<script id="[^"]+" type="application/json">(.*?)</script>', page, re.S):
            assert "<" not in block and ">" not in block, report.slug  # json_script escapes them


def _csv_links(page: str) -> list[str]:
    return sorted({html.unescape(href) for href in re.findall(r'href="(\?[^"]*format=csv[^"]*)"', page)})


def test_every_report_csv_neutralises_formulas(data, client, security_figures):
    client.force_login(data["manager"])
    cells = []
    for report in REPORTS:
        page = client.get(f"/reports/{report.slug}/").content.decode()
        links = _csv_links(page)
        assert links, f"{report.slug} offers no CSV download"
        for link in links:
            response = client.get(f"/reports/{report.slug}/{link}")
            assert response.status_code == 200
            assert response["Content-Type"].startswith("text/csv")
            assert response["Content-Disposition"].startswith("attachment;")
            rows = list(csv.reader(io.StringIO(response.content.decode())))
            cells += [(report.slug, link, cell) for row in rows for cell in row]

    neutralised = [c for c in cells if c[2].startswith("'") and c[2][1:].startswith(FORMULA_START)]
    security_figures["csv_injection"] = {
        "csv_tables": len({(slug, link) for slug, link, _ in cells}),
        "cells": len(cells),
        "cells_neutralised": len(neutralised),
    }
    dangerous = [c for c in cells if c[2].startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(c[2])]
    assert not dangerous, f"cells a spreadsheet would run: {dangerous[:5]}"
    texts = {cell for _, _, cell in cells}
    # The hostile names reached the downloads, neutralised with a leading quote.
    for name in (hostile.CAMPAIGN, hostile.REASON, hostile.FIT_LABEL, hostile.BEHAVIOR_LABEL):
        assert "'" + name in texts, f"{name!r} is not in any CSV"
