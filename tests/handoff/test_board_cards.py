"""A card's text is escaped exactly once (selectors.board_card escapes it; the template must not
escape it again nor let anything through raw)."""

from datetime import timedelta

import pytest

from tests.handoff.factories import RejectionReasonFactory
from tests.handoff.test_board_views import HX, make_handoff
from tests.leads.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db

NASTY = '<script>alert("x")</script>'


def test_every_text_on_a_card_is_escaped_once(client_for):
    owner = UserFactory(role="SDR", first_name="<b>Sam</b>", last_name="O'Neil")
    make_handoff(
        "mql",
        assignee=owner,
        first_name=NASTY,
        last_name="& Co",
        job_title="VP <i>Marketing</i>",
        company='Smith & "Sons"',
        campaign=CampaignFactory(name="<u>Spring</u>"),
        score_breakdown=[{"rule_id": 1, "type": "behavior", "label": "<img src=x>", "points": 40}],
    )
    html = client_for(owner).get("/board/").content.decode()
    assert "<script>" not in html.replace('<script src="', "") and "<img src=x>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
    assert "VP &lt;i&gt;Marketing&lt;/i&gt;" in html
    assert "Smith &amp; &quot;Sons&quot;" in html
    assert "&lt;u&gt;Spring&lt;/u&gt;" in html
    assert "+40 &lt;img src=x&gt;" in html
    assert "&lt;b&gt;Sam&lt;/b&gt; O&#x27;Neil" in html
    assert "&amp;amp;" not in html and "&amp;lt;" not in html, "escaped twice"


def test_a_rejected_card_escapes_its_reason_and_note(client_for, sdr):
    make_handoff(
        "recycled",
        assignee=sdr,
        closed_ago=timedelta(hours=2),
        reason=RejectionReasonFactory(code="odd", label="<em>Odd</em>"),
        first_name="Rita",
    )
    h = make_handoff("recycled", assignee=sdr, closed_ago=timedelta(hours=3), first_name="Rob")
    h.rejection_note = "<b>call</b> them & see"
    h.save(update_fields=["rejection_note"])
    html = client_for(sdr).get("/board/?view=closed", **HX).content.decode()
    assert "Rejected: &lt;em&gt;Odd&lt;/em&gt;" in html
    assert "&lt;b&gt;call&lt;/b&gt; them &amp; see" in html
    assert "<em>Odd</em>" not in html and "<b>call</b>" not in html


def test_a_cards_values_are_all_escaped_text_or_flags(sdr):
    """board_tags.board_card writes these into the markup as they are: each text must come escaped."""
    from django.utils.safestring import SafeString

    from handoff import selectors

    h = make_handoff("mql", assignee=sdr, first_name=NASTY)
    c = selectors.card_view(h.pk, sdr)
    for key, value in c.items():
        if key == "reasons":
            assert value and all(isinstance(s, SafeString) for pair in value for s in pair)
        else:
            assert isinstance(value, (bool, SafeString)), (key, type(value))
    assert c["name"].startswith("&lt;script&gt;")
